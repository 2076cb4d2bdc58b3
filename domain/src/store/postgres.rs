//! PostgreSQL through sqlx's asynchronous driver: a job runs in the calling task, in a
//! transaction of its own whose `statement_timeout` is the time left until the job's
//! deadline, so PostgreSQL cancels a statement that passes it and the transaction rolls
//! back. Before it takes a connection, a job waits for its lane's turn (see `lanes.rs`):
//! one organisation holds at most its share of the pool.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use sqlx::PgPool;
use tokio::sync::oneshot;

use super::db::{log_job, Admission, JobContext, JobFuture, Tx};
use super::lanes::{Lane, Lanes};
use crate::error::{DbError, Error, Result};

pub(crate) type PgTx = sqlx::Transaction<'static, sqlx::Postgres>;

/// The pool, and the lanes of the jobs waiting for a connection.
#[derive(Debug)]
pub(crate) struct Postgres {
    pool: PgPool,
    turns: Arc<Turns>,
    admission: Admission,
}

/// Jobs waiting for their turn, and how many hold one.
struct Turns {
    state: Mutex<TurnState>,
    /// Jobs that may hold a turn at once: the pool's size.
    capacity: usize,
}

impl std::fmt::Debug for Turns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Turns")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

struct TurnState {
    lanes: Lanes<oneshot::Sender<()>>,
    running: usize,
}

impl Turns {
    fn lock(&self) -> MutexGuard<'_, TurnState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Gives turns to waiting jobs while there is room. A job whose caller has stopped
    /// waiting gives its turn straight back.
    fn dispatch(&self, state: &mut TurnState) {
        while state.running < self.capacity {
            let Some((lane, waiter)) = state.lanes.pop() else {
                return;
            };
            state.running += 1;
            if waiter.send(()).is_err() {
                state.running -= 1;
                state.lanes.done(&lane);
            }
        }
    }

    fn release(&self, lane: &Lane) {
        let mut state = self.lock();
        state.running -= 1;
        state.lanes.done(lane);
        self.dispatch(&mut state);
    }
}

/// A job's turn: given back when dropped.
struct Turn {
    turns: Arc<Turns>,
    lane: Lane,
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.turns.release(&self.lane);
    }
}

/// A job waiting for its turn. If its caller stops waiting after the turn was given but
/// before it was taken, the turn is given back.
struct Waiting {
    turn: Option<oneshot::Receiver<()>>,
    turns: Arc<Turns>,
    lane: Lane,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(mut turn) = self.turn.take() {
            turn.close();
            if turn.try_recv().is_ok() {
                self.turns.release(&self.lane);
            }
        }
    }
}

impl Postgres {
    pub(crate) fn new(pool: PgPool, capacity: usize, admission: Admission) -> Self {
        crate::metrics::connections("pool", capacity.max(1));
        Self {
            pool,
            turns: Arc::new(Turns {
                state: Mutex::new(TurnState {
                    lanes: Lanes::new("pool", admission.lanes),
                    running: 0,
                }),
                capacity: capacity.max(1),
            }),
            admission,
        }
    }

    /// Waits for the job's turn in its lane: at most the admission's wait, and never past
    /// its deadline.
    async fn turn(&self, context: &JobContext) -> Result<Turn> {
        let (give, take) = oneshot::channel();
        {
            let mut state = self.turns.lock();
            state
                .lanes
                .push(context.lane.clone(), give)
                .map_err(|_| Error::Busy(super::db::RETRY_AFTER))?;
            self.turns.dispatch(&mut state);
        }
        let mut waiting = Waiting {
            turn: Some(take),
            turns: Arc::clone(&self.turns),
            lane: context.lane.clone(),
        };
        let wait = self
            .admission
            .queue_wait
            .min(context.deadline.saturating_duration_since(Instant::now()));
        let given = match waiting.turn.as_mut() {
            Some(take) => tokio::time::timeout(wait, take).await,
            None => return Err(Error::Database(DbError::Closed)),
        };
        match given {
            Ok(Ok(())) => {
                waiting.turn = None;
                Ok(Turn {
                    turns: Arc::clone(&self.turns),
                    lane: context.lane.clone(),
                })
            }
            Ok(Err(_)) => Err(Error::Database(DbError::Closed)),
            // `waiting` gives back a turn that came just too late.
            Err(_) => Err(context.waited_too_long()),
        }
    }

    /// Runs a job in a transaction: committed when it succeeds (and, for a write, when its
    /// request's deadline has not passed: see `deadline::run`), rolled back otherwise.
    pub(crate) async fn run<T, F>(&self, context: JobContext, write: bool, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut Tx) -> JobFuture<'t, T> + Send + 'static,
    {
        let queued_at = Instant::now();
        if queued_at >= context.deadline {
            return Err(Error::Timeout);
        }
        let _turn = self.turn(&context).await?;
        let (waited, started) = (queued_at.elapsed(), Instant::now());
        let left = context.deadline.saturating_duration_since(Instant::now());
        let millis = left.as_millis().max(1);
        let begin = if write {
            format!("BEGIN; SET LOCAL statement_timeout = {millis}")
        } else {
            format!("BEGIN READ ONLY; SET LOCAL statement_timeout = {millis}")
        };
        let tx = match tokio::time::timeout(left, self.pool.begin_with(begin)).await {
            Ok(tx) => tx?,
            Err(_) => return Err(context.waited_too_long()),
        };
        let mut tx = Tx::Postgres(tx);
        let result = work(&mut tx).await;
        let Tx::Postgres(tx) = tx else {
            return Err(Error::Database(DbError::Closed));
        };
        let kind = if write { "write" } else { "read" };
        log_job(kind, &context.lane, waited, started);
        match result {
            Ok(value) if !write || context.start_write() => {
                let committing = Instant::now();
                tx.commit().await?;
                if write {
                    crate::metrics::commit(committing.elapsed());
                }
                Ok(value)
            }
            Ok(_) => {
                tx.rollback().await?;
                Err(Error::Timeout)
            }
            Err(e) => {
                // A failed statement has already aborted the transaction; ending it is all
                // that is left, and its own error would only hide the job's.
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }
}
