//! A connection's one timer, for every deadline the connection waits on: idle between
//! requests, a partial frame, a Fetch long poll.
//!
//! A fresh tokio timer per wait costs more than its wheel insert and removal: when a new
//! timer is due earlier than every timer the runtime knew when it last parked, tokio wakes
//! its own driver (a write to an eventfd and one more `epoll_wait`). A Fetch long poll
//! (`max_wait_ms`, 500 ms from librdkafka and the Java client) is usually that earliest
//! timer, so every Fetch that waited paid a self-wake: measured at 10,000 msgs/s on 2
//! cores, ~7,400 eventfd writes and extra `epoll_wait`s a second, about 4% of the broker's
//! CPU (`benches/e2e.rs latency`, `perf stat -e 'syscalls:sys_enter_write'`).
//!
//! This timer is re-armed lazily instead: a wait for a later deadline than the armed one
//! leaves the timer alone and, when it fires, moves it to that deadline (later, so no
//! self-wake); only a wait for an earlier deadline re-arms it at once. A connection whose
//! Fetches each wait `max_wait_ms` thus touches the timer wheel about once per
//! `max_wait_ms`, not once per request.

use std::pin::Pin;

use tokio::time::{Instant, Sleep};

/// One re-armable timer owned by a connection (and lent to the request it is serving).
#[derive(Debug)]
pub struct ConnectionTimer {
    sleep: Pin<Box<Sleep>>,
}

impl Default for ConnectionTimer {
    fn default() -> Self {
        Self::new()
    }
}

impl ConnectionTimer {
    /// A timer armed far in the future (about a year): the first wait re-arms it.
    #[must_use]
    pub fn new() -> Self {
        let far = Instant::now() + std::time::Duration::from_secs(365 * 24 * 3600);
        ConnectionTimer { sleep: Box::pin(tokio::time::sleep_until(far)) }
    }

    /// Completes at `deadline` (at once if it has passed).
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the wait leaves the timer armed at or before `deadline`, which
    /// the next wait accounts for.
    pub async fn until(&mut self, deadline: Instant) {
        if self.sleep.deadline() > deadline {
            self.sleep.as_mut().reset(deadline);
        }
        loop {
            self.sleep.as_mut().await;
            // Fired at its deadline, which is at or before ours.
            if self.sleep.deadline() >= deadline {
                return;
            }
            self.sleep.as_mut().reset(deadline);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_later_wait_runs_to_its_own_deadline_past_the_armed_one() {
        let mut timer = ConnectionTimer::new();
        let start = Instant::now();
        // Arm at +100 ms, then abandon the wait.
        let _ = tokio::time::timeout(Duration::from_millis(10), timer.until(start + Duration::from_millis(100))).await;
        timer.until(start + Duration::from_millis(500)).await;
        assert_eq!(Instant::now(), start + Duration::from_millis(500));
    }

    #[tokio::test(start_paused = true)]
    async fn an_earlier_wait_rearms_at_once() {
        let mut timer = ConnectionTimer::new();
        let start = Instant::now();
        timer.until(start + Duration::from_millis(20)).await;
        assert_eq!(Instant::now(), start + Duration::from_millis(20));
        timer.until(start + Duration::from_millis(30)).await;
        assert_eq!(Instant::now(), start + Duration::from_millis(30));
        // A deadline already past completes at once.
        timer.until(start).await;
        assert_eq!(Instant::now(), start + Duration::from_millis(30));
    }
}
