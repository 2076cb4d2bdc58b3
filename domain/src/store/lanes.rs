//! Fair shares of the store between organisations.
//!
//! Every store job runs in a lane: its organisation's, or the shared lane for work of no
//! organisation (token and session lookups before a request is authenticated, background
//! writers). Lanes take turns: the next job to run is the first of the next lane in
//! rotation, so one organisation's queue of expensive requests waits behind itself, never
//! in front of another organisation's jobs. An organisation's lane may have at most
//! `running` jobs running at once (so it cannot occupy every connection) and `queued`
//! waiting; a job beyond that is refused at once, and the caller answers 503.
//!
//! The shared lane's jobs are point lookups by key (a bearer token's digest, a session id, an
//! admin's email) and the background writers' batches, all short; neither its running jobs
//! nor its queue are capped, so that no flood of unauthenticated requests can fill it and
//! refuse every organisation's next request. What it holds is bounded by the connections
//! the server accepts at once, and each job by its wait and its deadline.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use ::metrics::Gauge;

use crate::metrics;

/// An organisation's id, or `None` for the shared lane.
pub(crate) type Lane = Option<Arc<str>>;

/// How much of the store one organisation's lane may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaneLimits {
    /// Jobs running at once.
    pub running: usize,
    /// Jobs waiting for their turn.
    pub queued: usize,
}

struct LaneState<J> {
    queued: VecDeque<J>,
    running: usize,
    /// Whether the lane is in the rotation (it has queued jobs and room to run one).
    in_turn: bool,
}

/// Jobs waiting in lanes, and the rotation of lanes whose turn may come.
pub(crate) struct Lanes<J> {
    lanes: HashMap<Lane, LaneState<J>>,
    turn: VecDeque<Lane>,
    limits: LaneLimits,
    /// Jobs waiting and running in all lanes, as the queue's gauges show them.
    queued: usize,
    running: usize,
    gauges: (Gauge, Gauge),
}

impl<J> Lanes<J> {
    /// The lanes of the store queue named `queue` (a label of its metrics).
    pub(crate) fn new(queue: metrics::Queue, limits: LaneLimits) -> Self {
        Self {
            lanes: HashMap::new(),
            turn: VecDeque::new(),
            limits,
            queued: 0,
            running: 0,
            gauges: metrics::queue_gauges(queue),
        }
    }

    fn count(&mut self, queued: isize, running: isize) {
        self.queued = self.queued.saturating_add_signed(queued);
        self.running = self.running.saturating_add_signed(running);
        self.gauges.0.set(self.queued as f64);
        self.gauges.1.set(self.running as f64);
    }

    /// How many jobs of `lane` may run and wait.
    fn limits(&self, lane: &Lane) -> LaneLimits {
        match lane {
            Some(_) => self.limits,
            None => LaneLimits {
                running: usize::MAX,
                queued: usize::MAX,
            },
        }
    }

    /// Queues `job` in `lane`, or gives it back when the lane's queue is full.
    pub(crate) fn push(&mut self, lane: Lane, job: J) -> Result<(), J> {
        let limits = self.limits(&lane);
        let state = match self.lanes.entry(lane.clone()) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(LaneState {
                queued: VecDeque::new(),
                running: 0,
                in_turn: false,
            }),
        };
        if state.queued.len() >= limits.queued {
            return Err(job);
        }
        state.queued.push_back(job);
        if !state.in_turn && state.running < limits.running {
            state.in_turn = true;
            self.turn.push_back(lane);
        }
        self.count(1, 0);
        Ok(())
    }

    /// The next job in turn, now counted as running in its lane until [`done`](Self::done).
    pub(crate) fn pop(&mut self) -> Option<(Lane, J)> {
        let lane = self.turn.pop_front()?;
        let limit = self.limits(&lane).running;
        let state = self.lanes.get_mut(&lane)?;
        let job = state.queued.pop_front()?;
        state.running += 1;
        if !state.queued.is_empty() && state.running < limit {
            self.turn.push_back(lane.clone());
        } else {
            state.in_turn = false;
        }
        self.count(-1, 1);
        Some((lane, job))
    }

    /// A job of `lane` has ended: the lane may take its turn again.
    pub(crate) fn done(&mut self, lane: &Lane) {
        let limit = self.limits(lane).running;
        let Some(state) = self.lanes.get_mut(lane) else {
            return;
        };
        state.running = state.running.saturating_sub(1);
        if state.queued.is_empty() {
            if state.running == 0 {
                self.lanes.remove(lane);
            }
        } else if !state.in_turn && state.running < limit {
            state.in_turn = true;
            self.turn.push_back(lane.clone());
        }
        self.count(0, -1);
    }

    /// Whether a job could be taken now.
    pub(crate) fn has_turn(&self) -> bool {
        !self.turn.is_empty()
    }

    /// Jobs waiting in all lanes.
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        self.queued
    }

    /// Every queued job, taken out (when the store closes).
    pub(crate) fn drain(&mut self) -> Vec<J> {
        self.turn.clear();
        let drained: Vec<J> = self
            .lanes
            .values_mut()
            .flat_map(|s| s.queued.drain(..))
            .collect();
        self.count(-(drained.len() as isize), 0);
        drained
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lane(name: &str) -> Lane {
        Some(Arc::from(name))
    }

    #[test]
    fn lanes_take_turns_and_a_busy_lane_waits_behind_itself() {
        let mut lanes = Lanes::new(
            "test",
            LaneLimits {
                running: 2,
                queued: 10,
            },
        );
        for i in 0..5 {
            lanes.push(lane("a"), format!("a{i}")).unwrap();
        }
        lanes.push(lane("b"), "b0".to_owned()).unwrap();
        lanes.push(None, "shared".to_owned()).unwrap();
        let order: Vec<String> = std::iter::from_fn(|| lanes.pop().map(|(_, j)| j)).collect();
        // a's third job waits for one of its first two to end; b and the shared lane do
        // not wait for a at all.
        assert_eq!(order, ["a0", "b0", "shared", "a1"]);
        lanes.done(&lane("a"));
        assert_eq!(lanes.pop().map(|(_, j)| j).as_deref(), Some("a2"));
        assert!(lanes.pop().is_none(), "a is at its limit again");
    }

    #[test]
    fn a_full_lane_refuses_and_others_still_queue() {
        let mut lanes = Lanes::new(
            "test",
            LaneLimits {
                running: 1,
                queued: 2,
            },
        );
        lanes.push(lane("a"), 1).unwrap();
        lanes.push(lane("a"), 2).unwrap();
        assert_eq!(lanes.push(lane("a"), 3), Err(3));
        lanes.push(lane("b"), 4).unwrap();
        assert_eq!(lanes.pop(), Some((lane("a"), 1)));
        assert_eq!(lanes.pop(), Some((lane("b"), 4)));
        // A popped job frees a queue place.
        lanes.push(lane("a"), 5).unwrap();
    }

    #[test]
    fn the_shared_lane_is_not_capped_and_empty_lanes_are_forgotten() {
        let mut lanes = Lanes::new(
            "test",
            LaneLimits {
                running: 1,
                queued: 2,
            },
        );
        for i in 0..5 {
            lanes.push(None, i).unwrap();
        }
        assert_eq!(
            std::iter::from_fn(|| lanes.pop().map(|(_, j)| j)).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
        for _ in 0..5 {
            lanes.done(&None);
        }
        assert!(lanes.lanes.is_empty());
        assert!(!lanes.has_turn());
    }

    #[test]
    fn draining_takes_every_queued_job() {
        let mut lanes = Lanes::new(
            "test",
            LaneLimits {
                running: 1,
                queued: 10,
            },
        );
        lanes.push(lane("a"), 1).unwrap();
        lanes.push(lane("a"), 2).unwrap();
        lanes.push(lane("b"), 3).unwrap();
        let mut drained = lanes.drain();
        drained.sort_unstable();
        assert_eq!(drained, [1, 2, 3]);
        assert!(lanes.pop().is_none());
    }
}
