//! The deadline of a request and the organisation it works for, as the store reads them.
//!
//! A request runs inside [`run`], which gives it a [`Budget`]: every store job it starts
//! carries the budget's deadline (a statement still running then is interrupted and its
//! work rolled back), and once the request names its organisation ([`work_for`]), its jobs
//! take that organisation's share of the store. Work outside a request (the background
//! writers, the command line) has no budget: the store gives its jobs a default deadline
//! and a shared lane.
//!
//! A SCIM request also names the provisioning token it presented ([`present`]): each of its
//! store jobs checks, in its own transaction, that the token is still its integration's, so
//! a token reset refuses the next job of any request, whatever the caller cached.
//!
//! A SCIM request whose writes the change history keeps names its request id ([`keep_history`]):
//! the store records what each of its writes changed under that id.
//!
//! The budget travels in a Tokio task-local, so neither the SCIM handlers nor the console's
//! server functions pass it along: both run in the task of the request.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

tokio::task_local! {
    static BUDGET: Arc<Budget>;
}

/// The provisioning token a SCIM request presented, as stored: the integration it belongs
/// to and its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub integration_id: String,
    pub token_hash: String,
}

/// What one request may spend: until its deadline, on behalf of one organisation.
#[derive(Debug)]
pub struct Budget {
    deadline: Instant,
    organisation: Mutex<Option<Arc<str>>>,
    credential: OnceLock<Credential>,
    /// Set when this request's writes go into the change history.
    history: OnceLock<History>,
    /// Set when a store job has found the credential still valid.
    credential_checked: AtomicBool,
    /// Set when a write of this request has started; from then on only the write itself
    /// may answer the request (see [`run`]).
    write_started: AtomicBool,
}

impl Budget {
    pub fn new(deadline: Instant) -> Arc<Self> {
        Arc::new(Self {
            deadline,
            organisation: Mutex::new(None),
            credential: OnceLock::new(),
            history: OnceLock::new(),
            credential_checked: AtomicBool::new(false),
            write_started: AtomicBool::new(false),
        })
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Names the organisation this request works for: its store jobs from now on take that
    /// organisation's share.
    pub fn work_for(&self, organisation_id: &str) {
        *self.organisation.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(Arc::from(organisation_id));
    }

    pub(crate) fn credential(&self) -> Option<&Credential> {
        self.credential.get()
    }

    pub(crate) fn note_credential_checked(&self) {
        self.credential_checked.store(true, Ordering::Relaxed);
    }

    pub(crate) fn organisation(&self) -> Option<Arc<str>> {
        self.organisation
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Notes that a write of this request has started, then tells whether it may go on: a
    /// write that starts after the deadline must not (its request may already have been
    /// answered). The order (note, then look at the clock) is what [`run`] relies on.
    pub(crate) fn start_write(&self) -> bool {
        self.write_started.store(true, Ordering::SeqCst);
        Instant::now() < self.deadline
    }
}

/// The current request's budget, if the caller runs inside [`run`] (or [`within`]).
pub fn current() -> Option<Arc<Budget>> {
    BUDGET.try_with(Arc::clone).ok()
}

/// Names the organisation the current request works for: its store jobs from now on take
/// that organisation's share. Does nothing outside a request.
pub fn work_for(organisation_id: &str) {
    if let Some(budget) = current() {
        budget.work_for(organisation_id);
    }
}

/// Names the token the current request presented: each of its store jobs from now on
/// checks first that the token is still its integration's, and fails with
/// `InvalidCredentials` when it is not. Does nothing outside a request.
pub fn present(credential: Credential) {
    if let Some(budget) = current() {
        let _ = budget.credential.set(credential);
    }
}

/// How the change history names the writes of a request (see [`keep_history`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    /// The request's `X-Request-Id`.
    pub request_id: Option<String>,
}

/// Asks the store to keep what each write of the current request changes, in the change
/// history, under `request_id`. Does nothing outside a request.
pub fn keep_history(request_id: Option<String>) {
    if let Some(budget) = current() {
        let _ = budget.history.set(History { request_id });
    }
}

/// Whether the current request's writes go into the change history, and how it names them.
pub fn history() -> Option<History> {
    current().and_then(|b| b.history.get().cloned())
}

/// Whether a store job of the current request has checked its credential (see [`present`]).
pub fn credential_checked() -> bool {
    current().is_some_and(|b| b.credential_checked.load(Ordering::Relaxed))
}

/// Runs `work` with `budget` as the current budget.
pub async fn within<F: Future>(budget: Arc<Budget>, work: F) -> F::Output {
    BUDGET.scope(budget, work).await
}

/// The request did not finish within its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimedOut;

/// Runs a request with `timeout`: its store jobs carry the deadline, and at the deadline
/// the request is dropped and `TimedOut` returned, unless one of its writes has started.
/// Such a write may commit (it started in time, and its group commits a little later), so
/// the request then goes on until it answers, which it does soon: its write was cut short
/// at the deadline or has finished, and any later store job of it fails at once. So an
/// answer of `TimedOut` always means that nothing the request wrote will ever land.
///
/// Why this is sound: a write notes that it started before it looks at the clock
/// ([`Budget::start_write`]), and this function looks at the note only after the deadline.
/// If it finds none, any write that notes afterwards sees the deadline passed and does not
/// run.
pub async fn run<F: Future>(timeout: Duration, work: F) -> Result<F::Output, TimedOut> {
    let budget = Budget::new(Instant::now() + timeout);
    let deadline = tokio::time::Instant::from_std(budget.deadline);
    let work = within(Arc::clone(&budget), work);
    tokio::pin!(work);
    tokio::select! {
        biased;
        output = &mut work => Ok(output),
        () = tokio::time::sleep_until(deadline) => {
            if budget.write_started.load(Ordering::SeqCst) {
                Ok(work.await)
            } else {
                Err(TimedOut)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_without_writes_is_cut_at_its_deadline() {
        let slow = run(Duration::from_millis(50), std::future::pending::<()>()).await;
        assert_eq!(slow, Err(TimedOut));
        let quick = run(Duration::from_secs(5), async { 7 }).await;
        assert_eq!(quick, Ok(7));
    }

    #[tokio::test]
    async fn a_request_whose_write_started_in_time_is_answered_by_it() {
        let answered = run(Duration::from_millis(50), async {
            let budget = current().expect("inside run");
            assert!(budget.start_write(), "started before the deadline");
            // The write's group commits after the deadline.
            tokio::time::sleep(Duration::from_millis(150)).await;
            "committed"
        })
        .await;
        assert_eq!(answered, Ok("committed"));
    }

    #[tokio::test]
    async fn a_write_that_would_start_after_the_deadline_does_not() {
        let budget = Budget::new(Instant::now());
        assert!(!budget.start_write());
    }

    #[tokio::test]
    async fn the_organisation_is_named_inside_a_request_only() {
        work_for("outside");
        assert!(current().is_none());
        run(Duration::from_secs(5), async {
            assert_eq!(current().and_then(|b| b.organisation()), None);
            work_for("org-a");
            assert_eq!(
                current().and_then(|b| b.organisation()).as_deref(),
                Some("org-a")
            );
        })
        .await
        .unwrap();
    }
}
