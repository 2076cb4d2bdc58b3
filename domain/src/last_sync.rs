//! Last Sync, coalesced: SCIM requests record their time in memory and a background task
//! writes the newest time per integration at most once per interval, so a request never pays
//! for a database write of its own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::store::Store;

/// Pending last-sync times per integration id, waiting to be written.
#[derive(Clone, Default, Debug)]
pub struct LastSync {
    pending: Arc<Mutex<HashMap<String, i64>>>,
}

impl LastSync {
    /// Notes a successful SCIM request for `integration_id` at `at` (ms since the epoch).
    pub fn record(&self, integration_id: &str, at: i64) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        match pending.get_mut(integration_id) {
            Some(t) => *t = (*t).max(at),
            None => {
                pending.insert(integration_id.to_owned(), at);
            }
        }
    }

    /// A time recorded here and not written yet, newer than what the database may hold.
    pub fn pending(&self, integration_id: &str) -> Option<i64> {
        let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.get(integration_id).copied()
    }

    /// Writes every pending time, in one job. A failed write is put back to be retried.
    pub async fn flush(&self, store: &Store) {
        let batch: Vec<(String, i64)> = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.drain().collect()
        };
        if batch.is_empty() {
            return;
        }
        if let Err(e) = store.advance_last_sync(batch.clone()).await {
            tracing::warn!(error = %crate::error::chain(&e), "could not record last sync; will retry");
            for (id, at) in batch {
                self.record(&id, at);
            }
        }
    }

    /// Flushes every `interval` until the returned handle is aborted.
    pub fn spawn_flusher(&self, store: Store, interval: Duration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        every(interval, move || {
            let (this, store) = (this.clone(), store.clone());
            async move { this.flush(&store).await }
        })
    }
}

/// Runs `work` every `interval` (the first time at once; a run that overruns delays the
/// next) until the returned handle is aborted.
pub fn every<F, W>(interval: Duration, mut work: W) -> tokio::task::JoinHandle<()>
where
    W: FnMut() -> F + Send + 'static,
    F: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            work().await;
        }
    })
}
