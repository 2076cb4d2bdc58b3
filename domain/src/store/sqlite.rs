//! SQLite off the async workers: the store's own threads, each with its own connection.
//!
//! - **Readers**: a few threads, each with a read-only connection. A read job runs whole on
//!   one of them, in one read transaction (one snapshot for all its statements).
//! - **The writer**: one thread, one connection. Write jobs are grouped: each runs in a
//!   savepoint of a transaction that stays open while further jobs are waiting (up to
//!   [`MAX_BATCH`] jobs or [`BATCH_TIME`]), and is answered only once that transaction has
//!   committed, whatever its answer: a success, or an error such as "userName taken" that
//!   another job of the group may have caused. If the commit fails, every job of the group
//!   is answered with that failure, so an answer always describes what is committed.
//!   One commit writes the pages that many writes share (a table's last page, the upper
//!   pages of its indexes) once instead of once per write.
//! - **The checkpointer**: copies the write-ahead log into the database file beside the
//!   writer (see [`checkpoint`]).
//!
//! Jobs queue in lanes (see `lanes.rs`) and wait for their turn at most the admission's
//! `queue_wait`. A job carries its deadline: it does not start after it, each of its
//! statements checks it first, and a read-only statement still running at the deadline is
//! interrupted by the connection's progress handler. The async side hands a job over once
//! and awaits its answer: one thread hand-off per store operation.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::db::{log_job, Admission, JobContext, JobFuture, Tx};
use super::lanes::{Lane, LaneLimits, Lanes};
use crate::error::{DbError, Error, GroupFailure, Result};

/// At most this many write jobs share a transaction.
const MAX_BATCH: usize = 32;
/// A group stops taking jobs once it has run this long, so that the first job's answer
/// waits at most about this long for the commit.
pub(super) const BATCH_TIME: Duration = Duration::from_millis(10);
/// Prepared statements each connection keeps: the SCIM API's own plus the shapes of the
/// filters IdPs send.
const STATEMENT_CACHE: usize = 256;
/// Virtual machine steps between two looks at the clock while a statement runs (a few
/// microseconds of work; a look costs tens of nanoseconds).
const PROGRESS_STEPS: i32 = 1000;

/// A connection of the store's, with the deadline of the job it runs.
pub(crate) struct SqliteConn {
    conn: rusqlite::Connection,
    watch: Arc<Watch>,
}

/// The running job's deadline, shared with the connection's progress handler.
#[derive(Debug)]
struct Watch {
    epoch: Instant,
    /// Nanoseconds after `epoch`; `u64::MAX` when no job runs.
    deadline: AtomicU64,
    /// Whether the statement running now may be interrupted (it only reads).
    interruptible: AtomicBool,
}

impl Watch {
    fn passed(&self) -> bool {
        let deadline = self.deadline.load(Ordering::Relaxed);
        deadline != u64::MAX
            && u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX) >= deadline
    }
}

impl std::ops::Deref for SqliteConn {
    type Target = rusqlite::Connection;

    fn deref(&self) -> &rusqlite::Connection {
        &self.conn
    }
}

/// Marks the statement running on a connection interruptible (or not) until dropped.
pub(crate) struct Interruptible<'a>(&'a Watch);

impl Drop for Interruptible<'_> {
    fn drop(&mut self) {
        self.0.interruptible.store(false, Ordering::Relaxed);
    }
}

impl SqliteConn {
    fn open(path: &Path, read_only: bool) -> Result<Self> {
        let conn = rusqlite::Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        // No automatic checkpoints: they would run inside a writer's commit, while every
        // other writer waits, and stall them for the checkpoint's fsync.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
             PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 100663296;",
        )?;
        if read_only {
            conn.execute_batch("PRAGMA query_only = ON")?;
        } else {
            // The writer reads the pages it changes: a larger cache (8 MiB instead of 2)
            // keeps the indexes' upper pages, instead of reading them back from the file.
            conn.execute_batch("PRAGMA cache_size = -8192")?;
        }
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let watch = Arc::new(Watch {
            epoch: Instant::now(),
            deadline: AtomicU64::new(u64::MAX),
            interruptible: AtomicBool::new(false),
        });
        let handler = Arc::clone(&watch);
        conn.progress_handler(
            PROGRESS_STEPS,
            Some(move || handler.interruptible.load(Ordering::Relaxed) && handler.passed()),
        );
        Ok(Self { conn, watch })
    }

    pub(crate) fn deadline_passed(&self) -> bool {
        self.watch.passed()
    }

    pub(crate) fn interruptible(&self, read_only: bool) -> Interruptible<'_> {
        self.watch.interruptible.store(read_only, Ordering::Relaxed);
        Interruptible(&self.watch)
    }

    /// Runs a transaction-control statement, prepared once per connection.
    fn run(&self, sql: &str) -> rusqlite::Result<()> {
        self.conn.prepare_cached(sql)?.raw_execute().map(drop)
    }

    fn set_deadline(&self, deadline: Option<Instant>) {
        let nanos = deadline.map_or(u64::MAX, |d| {
            u64::try_from(d.saturating_duration_since(self.watch.epoch).as_nanos())
                .unwrap_or(u64::MAX - 1)
        });
        self.watch.deadline.store(nanos, Ordering::Relaxed);
    }
}

impl Tx {
    /// The connection of a SQLite thread's transaction.
    fn sqlite(&self) -> &SqliteConn {
        match self {
            Tx::Sqlite(conn) => conn,
            Tx::Postgres(_) => unreachable!("the store's SQLite threads hold SQLite connections"),
        }
    }
}

/// A job waiting in a lane, typed away.
struct Queued {
    state: Arc<AtomicU8>,
    context: JobContext,
    queued_at: Instant,
    work: Box<dyn Work>,
}

const QUEUED: u8 = 0;
const RUNNING: u8 = 1;
const CANCELLED: u8 = 2;

impl Queued {
    /// Takes the job out of the queue for running; false when its caller gave up on it.
    fn start(&self) -> bool {
        self.state
            .compare_exchange(QUEUED, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

/// A job's closure with the channel its answer goes back on.
trait Work: Send {
    /// Runs the job; what to send back once its transaction has ended.
    fn run(self: Box<Self>, tx: &mut Tx) -> Ran;
    /// Answers the job with `e` without running it.
    fn refuse(self: Box<Self>, e: Error);
}

/// Runs a job, catching a panic in it: a bug in one job must not stop the thread that serves
/// every organisation. A job that panicked is a failed job whose caller is answered with an
/// error (its channel is dropped).
fn run_caught(work: Box<dyn Work>, tx: &mut Tx) -> Ran {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work.run(tx))) {
        Ok(ran) => ran,
        Err(_) => {
            tracing::error!("a store job panicked; its work is rolled back");
            Ran {
                ok: false,
                answer: Box::new(|_| {}),
            }
        }
    }
}

/// A job that has run: whether it succeeded, and how to answer it once the outcome of its
/// transaction is known (`Some(error)`: the commit failed).
struct Ran {
    ok: bool,
    answer: Box<dyn FnOnce(Option<GroupFailure>) + Send>,
}

struct TypedWork<T, F> {
    work: F,
    answer: oneshot::Sender<Result<T>>,
}

impl<T, F> Work for TypedWork<T, F>
where
    T: Send + 'static,
    F: for<'t> FnOnce(&'t mut Tx) -> JobFuture<'t, T> + Send + 'static,
{
    fn run(self: Box<Self>, tx: &mut Tx) -> Ran {
        let result = complete((self.work)(tx));
        let answer = self.answer;
        Ran {
            ok: result.is_ok(),
            answer: Box::new(move |failed_commit| {
                let result = match failed_commit {
                    None => result,
                    Some(failure) => Err(failure.into()),
                };
                let _ = answer.send(result);
            }),
        }
    }

    fn refuse(self: Box<Self>, e: Error) {
        let _ = self.answer.send(Err(e));
    }
}

/// Runs a job's future to its end. On SQLite nothing in a job waits, so it ends at the
/// first poll; one that does not is a bug, answered as an error rather than a hang.
fn complete<T>(mut future: JobFuture<'_, T>) -> Result<T> {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(result) => result,
        Poll::Pending => Err(Error::Database(DbError::Suspended)),
    }
}

/// Jobs waiting for one kind of thread, and the threads' signal.
struct Queue {
    state: Mutex<QueueState>,
    signal: Condvar,
}

struct QueueState {
    lanes: Lanes<Queued>,
    closed: bool,
    /// The checkpointer asks the writer for the last pass that lets the log start over.
    restart_log: bool,
}

impl Queue {
    /// A queue for `connections` threads, named `name` in the metrics.
    fn new(name: crate::metrics::Queue, connections: usize, limits: LaneLimits) -> Self {
        crate::metrics::connections(name, connections);
        Self {
            state: Mutex::new(QueueState {
                lanes: Lanes::new(name, limits),
                closed: false,
                restart_log: false,
            }),
            signal: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, lane: Lane, job: Queued) -> Result<()> {
        let mut state = self.lock();
        if state.closed {
            return Err(Error::Database(DbError::Closed));
        }
        state
            .lanes
            .push(lane, job)
            .map_err(|_| Error::Busy(super::db::RETRY_AFTER))?;
        drop(state);
        self.signal.notify_one();
        Ok(())
    }

    /// The next job in turn, waiting for one; `None` once the queue is closed.
    fn next(&self) -> Option<(Lane, Queued)> {
        let mut state = self.lock();
        loop {
            if state.closed {
                return None;
            }
            if let Some(job) = state.lanes.pop() {
                return Some(job);
            }
            state = self.signal.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn done(&self, lane: &Lane) {
        let mut state = self.lock();
        state.lanes.done(lane);
        let more = state.lanes.has_turn();
        drop(state);
        if more {
            self.signal.notify_one();
        }
    }

    /// Closes the queue and refuses the jobs still in it.
    fn close(&self) {
        let refused = {
            let mut state = self.lock();
            state.closed = true;
            state.lanes.drain()
        };
        self.signal.notify_all();
        for job in refused {
            if job.start() {
                job.work.refuse(Error::Database(DbError::Closed));
            }
        }
    }

    fn is_closed(&self) -> bool {
        self.lock().closed
    }
}

/// The store's SQLite threads and their queues. Dropping it (with the last store handle)
/// stops the threads.
pub(crate) struct Sqlite {
    readers: Arc<Queue>,
    writer: Arc<Queue>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    queue_wait: Duration,
    /// Write groups ended so far (read by the tests of grouping).
    #[cfg(test)]
    groups: Arc<AtomicU64>,
}

impl std::fmt::Debug for Sqlite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sqlite")
            .field("queue_wait", &self.queue_wait)
            .finish_non_exhaustive()
    }
}

impl Sqlite {
    /// Opens `readers` read connections and the writer's on the file at `path` (which the
    /// migrations have created), each on a thread of its own, and the checkpointer.
    pub(crate) fn open(path: PathBuf, readers: usize, admission: Admission) -> Result<Self> {
        let groups = Arc::new(AtomicU64::new(0));
        let db = Self {
            readers: Arc::new(Queue::new("read", readers.max(1), admission.lanes)),
            // One thread writes, so a lane's running jobs need no cap there; its queue has one.
            writer: Arc::new(Queue::new(
                "write",
                1,
                LaneLimits {
                    running: usize::MAX,
                    queued: admission.lanes.queued,
                },
            )),
            threads: Mutex::new(Vec::new()),
            queue_wait: admission.queue_wait,
            #[cfg(test)]
            groups: Arc::clone(&groups),
        };
        // Connections are opened here, so a file that cannot be opened fails the start (and
        // dropping `db` stops the threads already started).
        for i in 0..readers.max(1) {
            let conn = SqliteConn::open(&path, true)?;
            let queue = Arc::clone(&db.readers);
            db.spawn(format!("sqlite-read-{i}"), move || read_loop(&queue, conn))?;
        }
        let conn = SqliteConn::open(&path, false)?;
        let queue = Arc::clone(&db.writer);
        db.spawn("sqlite-write".into(), move || {
            write_loop(&queue, conn, &groups)
        })?;
        let conn = SqliteConn::open(&path, false)?;
        let queue = Arc::clone(&db.writer);
        db.spawn("sqlite-checkpoint".into(), move || {
            checkpoint(&conn, &queue)
        })?;
        Ok(db)
    }

    fn spawn(&self, name: String, body: impl FnOnce() + Send + 'static) -> Result<()> {
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(body)
            .map_err(|e| Error::Database(DbError::Sqlx(sqlx::Error::Io(e))))?;
        self.threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(thread);
        Ok(())
    }

    /// Write groups ended so far, and write jobs waiting for their turn.
    #[cfg(test)]
    pub(crate) fn writer_state(&self) -> (u64, usize) {
        (
            self.groups.load(Ordering::Relaxed),
            self.writer.lock().lanes.queued(),
        )
    }

    pub(crate) async fn read<T, F>(&self, context: JobContext, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut Tx) -> JobFuture<'t, T> + Send + 'static,
    {
        self.submit(&self.readers, context, work).await
    }

    pub(crate) async fn write<T, F>(&self, context: JobContext, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut Tx) -> JobFuture<'t, T> + Send + 'static,
    {
        self.submit(&self.writer, context, work).await
    }

    /// Queues a job and awaits its answer. A job still queued after the admission's wait
    /// (or at its deadline) is taken back and refused; once it runs, its answer is awaited
    /// whatever the time, because a running write may commit.
    async fn submit<T, F>(&self, queue: &Queue, context: JobContext, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut Tx) -> JobFuture<'t, T> + Send + 'static,
    {
        let now = Instant::now();
        if now >= context.deadline {
            return Err(Error::Timeout);
        }
        let wait = self.queue_wait.min(context.deadline - now);
        let (answer, mut answered) = oneshot::channel();
        let state = Arc::new(AtomicU8::new(QUEUED));
        let lane = context.lane.clone();
        queue.push(
            lane,
            Queued {
                state: Arc::clone(&state),
                context: context.clone(),
                queued_at: now,
                work: Box::new(TypedWork { work, answer }),
            },
        )?;
        // If the caller stops waiting (its request was dropped), a job not yet started is
        // taken back.
        let _withdraw = Withdraw(&state);
        match tokio::time::timeout(wait, &mut answered).await {
            Ok(answer) => answer.map_err(|_| Error::Database(DbError::Closed))?,
            Err(_) => {
                if state
                    .compare_exchange(QUEUED, CANCELLED, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    return Err(context.waited_too_long());
                }
                answered
                    .await
                    .map_err(|_| Error::Database(DbError::Closed))?
            }
        }
    }

    /// Stops the threads once they have finished the jobs they are running; jobs still
    /// queued are refused. The checkpointer makes a last pass.
    pub(crate) async fn close(&self) {
        self.readers.close();
        self.writer.close();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        let joined = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        })
        .await;
        if joined.is_err() {
            tracing::warn!("a SQLite thread could not be joined");
        }
    }
}

impl Drop for Sqlite {
    fn drop(&mut self) {
        self.readers.close();
        self.writer.close();
    }
}

/// Withdraws a job that has not started when its caller stops waiting.
struct Withdraw<'a>(&'a AtomicU8);

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        let _ = self
            .0
            .compare_exchange(QUEUED, CANCELLED, Ordering::AcqRel, Ordering::Acquire);
    }
}

fn read_loop(queue: &Queue, conn: SqliteConn) {
    let mut tx = Tx::Sqlite(conn);
    while let Some((lane, job)) = queue.next() {
        if job.start() {
            let (waited, started) = (job.queued_at.elapsed(), Instant::now());
            run_read(&mut tx, job);
            log_job("read", &lane, waited, started);
        }
        queue.done(&lane);
    }
}

fn run_read(tx: &mut Tx, job: Queued) {
    let conn = tx.sqlite();
    if Instant::now() >= job.context.deadline {
        job.work.refuse(Error::Timeout);
        return;
    }
    // One read transaction: every statement of the job sees the same snapshot.
    if let Err(e) = conn.run("BEGIN") {
        job.work.refuse(e.into());
        return;
    }
    conn.set_deadline(Some(job.context.deadline));
    let ran = run_caught(job.work, tx);
    let conn = tx.sqlite();
    conn.set_deadline(None);
    if !conn.is_autocommit() {
        if let Err(e) = conn.run("COMMIT") {
            tracing::warn!(error = %e, "ending a read transaction failed");
            let _ = conn.run("ROLLBACK");
        }
    }
    (ran.answer)(None);
}

/// A job's answer, held until its group's transaction has ended.
type Answer = Box<dyn FnOnce(Option<GroupFailure>) + Send>;

fn write_loop(queue: &Queue, conn: SqliteConn, groups: &AtomicU64) {
    let mut tx = Tx::Sqlite(conn);
    loop {
        let Some(first) = next_write(queue, &tx) else {
            break;
        };
        let answers = write_group(queue, &mut tx, first);
        crate::metrics::write_group(answers.len());
        let failed = end_group(tx.sqlite(), answers.len());
        groups.fetch_add(1, Ordering::Relaxed);
        for answer in answers {
            answer(failed.clone());
        }
    }
}

/// The next write job, waiting for one. While it waits, the writer makes the checkpointer's
/// last pass when asked (see [`checkpoint`]). `None` once the queue is closed.
fn next_write(queue: &Queue, tx: &Tx) -> Option<(Lane, Queued)> {
    let mut state = queue.lock();
    loop {
        if state.restart_log {
            state.restart_log = false;
            drop(state);
            let paused = Instant::now();
            passive_checkpoint(tx.sqlite());
            crate::metrics::checkpoint_pause(paused.elapsed());
            state = queue.lock();
            continue;
        }
        if state.closed {
            return None;
        }
        if let Some(job) = state.lanes.pop() {
            return Some(job);
        }
        state = queue.signal.wait(state).unwrap_or_else(|p| p.into_inner());
    }
}

/// Runs write jobs in one transaction, starting with `first`, while more are waiting (up to
/// [`MAX_BATCH`] or [`BATCH_TIME`]). Returns the answers to give once it has ended.
fn write_group(queue: &Queue, tx: &mut Tx, first: (Lane, Queued)) -> Vec<Answer> {
    let mut answers: Vec<Answer> = Vec::new();
    let started = Instant::now();
    let mut begun = false;
    let mut next = Some(first);
    while let Some((lane, job)) = next.take() {
        if job.start() {
            if !job.context.start_write() {
                job.work.refuse(Error::Timeout);
            } else if let (false, Err(e)) = (begun, begin(tx.sqlite())) {
                job.work.refuse(e);
            } else {
                begun = true;
                let (waited, started) = (job.queued_at.elapsed(), Instant::now());
                answers.push(run_write(tx, job));
                log_job("write", &lane, waited, started);
            }
        }
        queue.done(&lane);
        if begun && tx.sqlite().is_autocommit() {
            // An error made SQLite roll back the whole transaction: the jobs before it in
            // the group have lost their writes and are answered with the failure.
            break;
        }
        if answers.len() >= MAX_BATCH || started.elapsed() >= BATCH_TIME {
            break;
        }
        let mut state = queue.lock();
        next = if state.closed {
            None
        } else {
            state.lanes.pop()
        };
    }
    answers
}

/// Begins the group's transaction. IMMEDIATE takes the write lock now: a transaction that
/// read first and found the lock taken by another process afterwards could not go on.
fn begin(conn: &SqliteConn) -> Result<()> {
    Ok(conn.run("BEGIN IMMEDIATE")?)
}

/// Runs one write job in a savepoint of the open transaction, undoing it if it fails.
fn run_write(tx: &mut Tx, job: Queued) -> Answer {
    let conn = tx.sqlite();
    if let Err(e) = conn.run("SAVEPOINT job") {
        job.work.refuse(e.into());
        return Box::new(|_| {});
    }
    conn.set_deadline(Some(job.context.deadline));
    let ran = run_caught(job.work, tx);
    let conn = tx.sqlite();
    conn.set_deadline(None);
    if !conn.is_autocommit() {
        let ended = if ran.ok {
            conn.run("RELEASE job")
        } else {
            conn.run("ROLLBACK TO job")
                .and_then(|()| conn.run("RELEASE job"))
        };
        if let Err(e) = ended {
            // What this job did can no longer be told apart from the others' writes.
            tracing::error!(error = %e, "ending a write's savepoint failed");
            let _ = conn.run("ROLLBACK");
        }
    }
    ran.answer
}

/// Commits the group's transaction. `Some(error)` when it did not commit, which fails
/// every job of the group.
fn end_group(conn: &SqliteConn, jobs: usize) -> Option<GroupFailure> {
    if jobs == 0 {
        if !conn.is_autocommit() {
            let _ = conn.run("ROLLBACK");
        }
        return None;
    }
    if conn.is_autocommit() {
        return Some(GroupFailure::RolledBack);
    }
    let committing = Instant::now();
    match conn.run("COMMIT") {
        Ok(()) => {
            crate::metrics::commit(committing.elapsed());
            None
        }
        Err(e) => {
            tracing::error!(error = %e, jobs, "a grouped commit failed");
            if !conn.is_autocommit() {
                let _ = conn.run("ROLLBACK");
            }
            Some(GroupFailure::Commit(Arc::new(e)))
        }
    }
}

/// How often the checkpointer copies the write-ahead log into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);
/// Once the log holds this many pages (64 MiB), the checkpointer lets it start over.
const RESTART_AT: i64 = 16384;
/// Pages it leaves for the writer's last pass when letting the log start over.
const SMALL_TAIL: i64 = 256;

/// (pages in the log, pages of it copied), or `None` when the checkpoint failed.
fn passive_checkpoint(conn: &rusqlite::Connection) -> Option<(i64, i64)> {
    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
    }) {
        Ok(pages) => Some(pages),
        Err(e) => {
            tracing::warn!(error = %e, "checkpoint failed");
            None
        }
    }
}

/// Copies committed pages from the write-ahead log into the database file, beside the
/// writer rather than inside one of its commits (SQLite's automatic checkpoints, turned off
/// here, run in a committing writer while every other writer waits for it).
///
/// A passive checkpoint takes no lock a writer needs, but SQLite starts the log over only
/// when a writer begins with every page of it copied, which never happens while writes keep
/// committing: the log would grow without end. So once it holds [`RESTART_AT`] pages, the
/// checkpointer copies until a small tail is left and asks the writer, between two groups,
/// to copy the tail itself: its next transaction then finds the log fully copied and
/// starts it over. Ends with a last checkpoint once the store closes.
fn checkpoint(conn: &SqliteConn, writer: &Queue) {
    loop {
        std::thread::sleep(CHECKPOINT_EVERY);
        if writer.is_closed() {
            break;
        }
        let Some((log, _)) = passive_checkpoint(conn) else {
            continue;
        };
        if log < RESTART_AT {
            continue;
        }
        for _ in 0..8 {
            match passive_checkpoint(conn) {
                Some((log, copied)) if log - copied > SMALL_TAIL => {}
                _ => break,
            }
        }
        writer.lock().restart_log = true;
        writer.signal.notify_all();
    }
    passive_checkpoint(conn);
}
