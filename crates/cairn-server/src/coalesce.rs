//! Shares one consistency barrier among the reads that wait for it.
//!
//! A default-mode or `?consistent` read on a follower or a client agent costs a round trip
//! to the leader for its read index; on the leader, a turn of the Raft core. When a change
//! wakes a thousand blocking queries at once, or under a steady read load, those barriers
//! are all the same question. [`Coalescer`] asks it once for everyone who is waiting: a
//! caller gets the answer of a barrier that *started after it arrived* (an earlier one
//! could predate a write the caller must see), so sharing never weakens the guarantee.
//!
//! No task is spawned: the first caller to find no barrier in flight runs it in its own
//! future. If that caller is cancelled (its HTTP client went away), the barrier is marked
//! abandoned and a waiting caller takes over.

use std::future::Future;

use parking_lot::Mutex;
use tokio::sync::watch;

/// The outcome of the barrier numbered `.0`; `None` when its runner was cancelled.
type Done<T> = (u64, Option<T>);

/// Runs at most one barrier at a time and hands its result to every caller that arrived
/// before it started.
pub struct Coalescer<T: Clone> {
    /// How many barriers have started, and whether one is running now.
    runs: Mutex<(u64, bool)>,
    done: watch::Sender<Done<T>>,
}

impl<T: Clone> Default for Coalescer<T> {
    fn default() -> Self {
        Coalescer {
            runs: Mutex::new((0, false)),
            done: watch::channel((0, None)).0,
        }
    }
}

/// Ends the run numbered `gen`: publishes its result, or marks it abandoned when dropped
/// before [`finish`](Self::finish).
struct Running<'a, T: Clone> {
    owner: &'a Coalescer<T>,
    gen: u64,
    finished: bool,
}

impl<T: Clone> Running<'_, T> {
    fn finish(mut self, result: T) {
        self.finished = true;
        self.owner.runs.lock().1 = false;
        self.owner.done.send_replace((self.gen, Some(result)));
    }
}

impl<T: Clone> Drop for Running<'_, T> {
    fn drop(&mut self) {
        if !self.finished {
            self.owner.runs.lock().1 = false;
            self.owner.done.send_replace((self.gen, None));
        }
    }
}

impl<T: Clone> Coalescer<T> {
    /// The result of a run of `barrier` that started after this call was made: one in
    /// flight now is waited out first, then the next is shared.
    pub async fn run<F, Fut>(&self, barrier: F) -> T
    where
        F: Fn() -> Fut,
        Fut: Future<Output = T>,
    {
        let mut rx = self.done.subscribe();
        // Runs numbered `need` or later started after we arrived.
        let need = self.runs.lock().0 + 1;
        loop {
            let mine = {
                let mut runs = self.runs.lock();
                if runs.1 {
                    None
                } else {
                    runs.0 += 1;
                    runs.1 = true;
                    Some(runs.0)
                }
            };
            if let Some(gen) = mine {
                let running = Running {
                    owner: self,
                    gen,
                    finished: false,
                };
                let result = barrier().await;
                running.finish(result.clone());
                return result;
            }
            // Someone else's run is in flight: wait for one to end.
            if rx.changed().await.is_err() {
                // Unreachable while `self` lives (it holds the sender); run our own.
                return barrier().await;
            }
            let (gen, result) = rx.borrow_and_update().clone();
            if gen >= need {
                if let Some(result) = result {
                    return result;
                }
            }
            // It started before we arrived, or its runner was cancelled: try again.
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    /// A barrier that counts its runs and answers the run number after a pause.
    async fn counting(calls: &AtomicU64) -> u64 {
        let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
        n
    }

    #[tokio::test]
    async fn concurrent_callers_share_runs() {
        let c = Arc::new(Coalescer::default());
        let calls = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let (c, calls) = (c.clone(), calls.clone());
            tasks.push(tokio::spawn(
                async move { c.run(|| counting(&calls)).await },
            ));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let runs = calls.load(Ordering::SeqCst);
        assert!(runs <= 3, "100 callers needed {runs} runs");
    }

    #[tokio::test]
    async fn a_caller_never_gets_a_run_that_started_before_it_arrived() {
        let c = Arc::new(Coalescer::default());
        let calls = Arc::new(AtomicU64::new(0));
        let first = {
            let (c, calls) = (c.clone(), calls.clone());
            tokio::spawn(async move { c.run(|| counting(&calls)).await })
        };
        // Let the first run start, then arrive while it is in flight.
        while calls.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let second = c.run(|| counting(&calls)).await;
        assert_eq!(first.await.unwrap(), 1);
        assert_eq!(
            second, 2,
            "the second caller must get a run that started after it"
        );
    }

    #[tokio::test]
    async fn a_cancelled_runner_hands_over_to_a_waiter() {
        let c = Arc::new(Coalescer::<u64>::default());
        let stuck = {
            let c = c.clone();
            tokio::spawn(async move { c.run(std::future::pending::<u64>).await })
        };
        while !c.runs.lock().1 {
            tokio::task::yield_now().await;
        }
        let waiter = {
            let c = c.clone();
            tokio::spawn(async move { c.run(|| async { 7 }).await })
        };
        tokio::task::yield_now().await;
        stuck.abort();
        let got = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the waiter took over")
            .unwrap();
        assert_eq!(got, 7);
    }
}
