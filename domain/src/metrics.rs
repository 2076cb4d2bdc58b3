//! What the store and the activity log measure, through the `metrics` facade: nothing is
//! recorded until the server installs a recorder (it renders them at `/metrics`, see
//! `server/src/telemetry.rs`). Every name is here, after Prometheus' conventions: base units
//! (`_seconds`), `_total` for counters, and labels from closed sets (never an organisation,
//! an id or a token).

use std::time::Duration;

use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Gauge, Unit,
};

/// Which of the store's queues: `read` and `write` (SQLite's reader threads and its one
/// writer), or `pool` (PostgreSQL's connections).
pub(crate) type Queue = &'static str;

/// Says what each metric of this crate is, for the `# HELP` lines.
pub fn describe() {
    describe_histogram!(
        "store_job_queue_seconds",
        Unit::Seconds,
        "Time a store job waited for its turn, by kind (read or write)"
    );
    describe_histogram!(
        "store_job_run_seconds",
        Unit::Seconds,
        "Time a store job ran, by kind (read or write)"
    );
    describe_gauge!(
        "store_jobs_queued",
        "Store jobs waiting for their turn, by queue"
    );
    describe_gauge!(
        "store_jobs_running",
        "Store jobs running, each on a connection of its queue"
    );
    describe_gauge!("store_connections", "Connections of each store queue");
    describe_histogram!(
        "store_write_group_jobs",
        "Write jobs committed together in one SQLite transaction"
    );
    describe_histogram!(
        "store_write_commit_seconds",
        Unit::Seconds,
        "Time a write transaction took to commit"
    );
    describe_histogram!(
        "store_checkpoint_pause_seconds",
        Unit::Seconds,
        "Time the SQLite writer paused between groups to let the write-ahead log start over"
    );
    describe_gauge!(
        "activity_log_buffered_entries",
        "Activity log entries waiting to be written"
    );
    describe_counter!(
        "activity_log_dropped_entries_total",
        "Activity log entries dropped: the buffer was full, or a batch failed to write (counted whole)"
    );
    describe_counter!(
        "console_login_failures_total",
        "Wrong passwords given to the console (logins and step-ups)"
    );
    describe_counter!(
        "console_login_throttled_total",
        "Console logins and step-ups refused because their address failed too often"
    );
}

/// A store job's wait for its turn and its run; `kind` is `read` or `write`.
pub(crate) fn job(kind: &'static str, waited: Duration, ran: Duration) {
    histogram!("store_job_queue_seconds", "kind" => kind).record(waited);
    histogram!("store_job_run_seconds", "kind" => kind).record(ran);
}

/// The gauges of a queue's waiting and running jobs.
pub(crate) fn queue_gauges(queue: Queue) -> (Gauge, Gauge) {
    (
        gauge!("store_jobs_queued", "queue" => queue),
        gauge!("store_jobs_running", "queue" => queue),
    )
}

pub(crate) fn connections(queue: Queue, connections: usize) {
    gauge!("store_connections", "queue" => queue).set(connections as f64);
}

pub(crate) fn write_group(jobs: usize) {
    histogram!("store_write_group_jobs").record(jobs as f64);
}

pub(crate) fn commit(took: Duration) {
    histogram!("store_write_commit_seconds").record(took);
}

pub(crate) fn checkpoint_pause(took: Duration) {
    histogram!("store_checkpoint_pause_seconds").record(took);
}

pub(crate) fn activity_buffered(entries: usize) {
    gauge!("activity_log_buffered_entries").set(entries as f64);
}

pub(crate) fn activity_dropped(entries: usize) {
    counter!("activity_log_dropped_entries_total").increment(entries as u64);
}

pub(crate) fn login_failed() {
    counter!("console_login_failures_total").increment(1);
}

pub(crate) fn login_throttled() {
    counter!("console_login_throttled_total").increment(1);
}
