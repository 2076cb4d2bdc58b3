//! The sync activity log: every authenticated SCIM request, kept for a bounded time so that
//! administrators can see what their identity provider sent and what it was answered.
//!
//! Requests are recorded in memory and written in batches by a background task, so the SCIM
//! path never waits for the log. What is buffered is bounded: when the database cannot keep
//! up, new entries are dropped and counted rather than slowing provisioning down. An entry
//! buffered when the process is killed outright is lost; a clean shutdown writes them all.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

pub use crate::store::activity::{
    RequestDetail, RequestEntry, RequestQuery, RequestRow, StatusFilter, RETIRED_TOKEN,
};
use crate::store::Store;

/// Entries waiting to be written beyond this are dropped.
pub const MAX_PENDING: usize = 50_000;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

#[derive(Clone, Debug)]
pub struct ActivityLog {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Entries with their raw request bodies, redacted when written (off the request path).
    pending: Mutex<Vec<(RequestEntry, Option<Bytes>)>>,
    dropped: AtomicU64,
    retention_days: u32,
    /// Held by the flush writing: one at a time.
    writing: tokio::sync::Mutex<()>,
}

impl ActivityLog {
    /// A log keeping entries `retention_days` days; 0 records nothing.
    pub fn new(retention_days: u32) -> Self {
        Self {
            inner: Arc::new(Inner {
                pending: Mutex::new(Vec::new()),
                dropped: AtomicU64::new(0),
                retention_days,
                writing: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// How long entries are kept; 0 when nothing is recorded.
    pub fn retention_days(&self) -> u32 {
        self.inner.retention_days
    }

    pub fn enabled(&self) -> bool {
        self.inner.retention_days > 0
    }

    /// Notes a request; `body` is what the client sent, stored with passwords removed
    /// ([`scim::redact`]).
    pub fn record(&self, entry: RequestEntry, body: Option<Bytes>) {
        if !self.enabled() {
            return;
        }
        let mut pending = self.inner.pending.lock().unwrap_or_else(|p| p.into_inner());
        if pending.len() >= MAX_PENDING {
            self.inner.dropped.fetch_add(1, Ordering::Relaxed);
            crate::metrics::activity_dropped(1);
            return;
        }
        pending.push((entry, body));
        crate::metrics::activity_buffered(pending.len());
    }

    /// Writes what is pending, once any flush writing now (the writer's) is done: when this
    /// returns, every entry recorded before the call is written. A batch that fails to write
    /// is dropped (and logged), so a database outage cannot make the buffer grow for ever.
    pub async fn flush(&self, store: &Store) {
        let _writing = self.inner.writing.lock().await;
        let batch = {
            let mut pending = self.inner.pending.lock().unwrap_or_else(|p| p.into_inner());
            crate::metrics::activity_buffered(0);
            std::mem::take(&mut *pending)
        };
        let batch: Vec<RequestEntry> = batch
            .into_iter()
            .map(|(mut entry, body)| {
                entry.request_body = body.and_then(|b| scim::redact::request_body(&b));
                entry
            })
            .collect();
        if !batch.is_empty() {
            let lost = batch.len();
            if let Err(e) = store.insert_requests(batch).await {
                crate::metrics::activity_dropped(lost);
                tracing::warn!(error = %crate::error::chain(&e), lost_at_most = lost, "could not write the activity log");
            }
        }
        let dropped = self.inner.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "activity log entries dropped: the database fell behind"
            );
        }
    }

    /// Stops a writer of [`ActivityLog::spawn_writer`] between two flushes, never during
    /// one (its batch would be lost).
    pub async fn stop_writer(&self, writer: tokio::task::JoinHandle<()>) {
        let _writing = self.inner.writing.lock().await;
        writer.abort();
        // Gone once this returns: it was waiting for its tick or for this lock.
        let _ = writer.await;
    }

    /// Deletes entries older than the retention period.
    pub async fn prune(&self, store: &Store, now_ms: i64) {
        if !self.enabled() {
            return;
        }
        let before = now_ms - i64::from(self.inner.retention_days) * DAY_MS;
        match store.prune_requests(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "pruned the activity log"),
            Err(e) => {
                tracing::warn!(error = %crate::error::chain(&e), "could not prune the activity log")
            }
        }
    }

    /// Flushes every `interval` and prunes every hour, until the handle is aborted.
    pub fn spawn_writer(&self, store: Store, interval: Duration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_prune = None::<tokio::time::Instant>;
            loop {
                tick.tick().await;
                this.flush(&store).await;
                if last_prune.is_none_or(|t| t.elapsed() >= Duration::from_secs(3600)) {
                    this.prune(&store, crate::time::now_ms()).await;
                    last_prune = Some(tokio::time::Instant::now());
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(at: i64, status: u16) -> RequestEntry {
        RequestEntry {
            organisation_id: String::new(),
            integration_id: String::new(),
            at,
            method: "GET".into(),
            path: "/scimapi/Users".into(),
            status,
            resource_type: None,
            resource_id: None,
            duration_us: 100,
            error: None,
            request_body: None,
            request_id: None,
        }
    }

    /// A store in a temporary directory (kept while the directory lives) with one
    /// organisation and its Okta integration.
    async fn acme_with_okta() -> (
        tempfile::TempDir,
        Store,
        crate::accounts::Organisation,
        crate::integrations::TokenOwner,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&format!("sqlite://{}/t.db", dir.path().display()))
            .await
            .unwrap();
        let (org, _) =
            crate::accounts::create_admin(&store, "Acme", "ada@example.com", "a long password")
                .await
                .unwrap();
        let token = crate::integrations::create_token(
            &store,
            &org.id,
            crate::integrations::IntegrationKind::Okta,
            &crate::integrations::Actor::Operator,
        )
        .await
        .unwrap()
        .into_plaintext();
        let owner = crate::integrations::authenticate(&store, &token)
            .await
            .unwrap()
            .unwrap();
        (dir, store, org, owner)
    }

    #[tokio::test]
    async fn entries_are_written_listed_and_pruned() {
        let (_dir, store, org, owner) = acme_with_okta().await;
        let log = ActivityLog::new(30);
        let now = crate::time::now_ms();
        for (at, status) in [(now - 31 * DAY_MS, 200), (now - 1000, 200), (now, 409)] {
            log.record(
                RequestEntry {
                    organisation_id: org.id.clone(),
                    integration_id: owner.integration_id.clone(),
                    error: (status >= 400).then(|| "uniqueness: taken".to_owned()),
                    ..entry(at, status)
                },
                Some(Bytes::from_static(
                    br#"{"userName":"ada","password":"s3cret"}"#,
                )),
            );
        }
        log.flush(&store).await;
        let all = store
            .requests(
                &org.id,
                &RequestQuery {
                    limit: 10,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].status, 409, "newest first");
        assert_eq!(all[0].integration_kind.as_deref(), Some("okta"));
        let failures = store
            .requests(
                &org.id,
                &RequestQuery {
                    status: StatusFilter::Failures,
                    limit: 10,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(failures.len(), 1);
        assert!(failures[0].has_detail);
        let detail = store
            .request_detail(&org.id, failures[0].id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(detail.error.as_deref(), Some("uniqueness: taken"));
        let body = detail.request_body.unwrap_or_default();
        assert!(body.contains("ada") && !body.contains("s3cret"), "{body}");
        let figures = store.dashboard_figures(&org.id, now).await.unwrap();
        assert_eq!(figures.integrations.len(), 1);
        let okta = &figures.integrations[0];
        assert_eq!((okta.requests, okta.failures), (2, 1));
        assert_eq!(okta.last_error, Some((now, "uniqueness: taken".to_owned())));
        log.prune(&store, now).await;
        let kept = store
            .requests(
                &org.id,
                &RequestQuery {
                    limit: 10,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(kept.len(), 2, "the 31-day-old entry is pruned");
    }

    /// The server's writer flushes every few milliseconds here, as it does every 250 ms:
    /// a flush that finds the writer's batch in flight waits for it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flush_returns_once_everything_recorded_before_it_is_written() {
        let (_dir, store, org, owner) = acme_with_okta().await;
        let log = ActivityLog::new(30);
        let writer = log.spawn_writer(store.clone(), Duration::from_millis(1));
        let all = RequestQuery {
            limit: 10_000,
            ..Default::default()
        };
        for round in 1..=100 {
            for _ in 0..10 {
                log.record(
                    RequestEntry {
                        organisation_id: org.id.clone(),
                        integration_id: owner.integration_id.clone(),
                        ..entry(crate::time::now_ms(), 200)
                    },
                    None,
                );
            }
            // Now and then the writer takes them first.
            tokio::time::sleep(Duration::from_micros(100 * (round as u64 % 20))).await;
            log.flush(&store).await;
            assert_eq!(
                store.requests(&org.id, &all).await.unwrap().len(),
                round * 10
            );
        }
        log.stop_writer(writer).await;
    }

    #[test]
    fn a_disabled_log_records_nothing_and_the_buffer_is_bounded() {
        let off = ActivityLog::new(0);
        off.record(entry(0, 200), None);
        assert!(off.inner.pending.lock().unwrap().is_empty());
        let log = ActivityLog::new(1);
        for _ in 0..MAX_PENDING + 10 {
            log.record(entry(0, 200), None);
        }
        assert_eq!(log.inner.pending.lock().unwrap().len(), MAX_PENDING);
        assert_eq!(log.inner.dropped.load(Ordering::Relaxed), 10);
    }
}
