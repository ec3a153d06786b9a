//! Coalesced lookups: one flight per name, with a freshness rule.
//!
//! The portal resolves its back end on every request so that no request is served from
//! an answer older than itself. Under concurrency those lookups are the same question
//! asked many times over, and each costs a UDP round trip through the kernel and the
//! agent. [`Coalescer`] asks it once for all the requests waiting for it, without
//! weakening the rule: a request joins a lookup only while that lookup's query has not
//! been sent. If one is already out, the request joins the *next* lookup, which is sent
//! as soon as the current one ends. Every request therefore gets an answer the resolver
//! gave after the request arrived, as fresh as a lookup of its own.
//!
//! Per name there is at most one lookup in flight and one waiting to be sent, so nothing
//! queues up. The lookups of a name are made by a task of their own, which lives only
//! while there is a lookup to make. A request dropped while it waits therefore takes
//! nothing with it: the others still get the answer, and a next lookup that every joiner
//! has left is not sent at all. If that task dies (a panic in the lookup, or the runtime
//! shutting down), its waiters get [`Abandoned`] instead of waiting forever. The lookup
//! itself must end in bounded time (the DNS client's timeouts see to it): the coalescer
//! adds no timeout of its own.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

/// What a [`Coalescer`] asks: one lookup of one name.
pub trait Lookup: Send + Sync + 'static {
    /// The answer (or error) every request that joined the lookup receives.
    type Output: Clone + Send + Sync + 'static;

    /// Looks `name` up. The future must not borrow `self` or `name`: it runs in
    /// a task of its own.
    fn lookup(&self, name: &str) -> impl Future<Output = Self::Output> + Send + 'static;
}

/// The lookup a request had joined ended without an answer: the task making
/// it panicked, or the runtime is shutting down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the shared lookup was abandoned")]
pub struct Abandoned;

/// One lookup: its answer, once there is one, for every request that joined it.
struct Flight<T> {
    done: watch::Sender<Option<T>>,
}

impl<T> Flight<T> {
    fn new() -> Self {
        Flight {
            done: watch::channel(None).0,
        }
    }
}

/// The lookups of one name. A slot exists exactly while its task runs.
struct Slot<T> {
    /// The lookup being made, or about to be.
    current: Flight<T>,
    /// Whether `current`'s query may have been sent: from then on a request
    /// that arrives joins `next` instead.
    sent: bool,
    /// The lookup for the requests that arrived after `current` was sent.
    next: Option<Flight<T>>,
}

struct Shared<L: Lookup> {
    lookup: L,
    slots: Mutex<HashMap<String, Slot<L::Output>>>,
}

/// Shares each lookup among the requests that arrived before it was sent.
pub struct Coalescer<L: Lookup> {
    shared: Arc<Shared<L>>,
}

impl<L: Lookup> Clone for Coalescer<L> {
    fn clone(&self) -> Self {
        Coalescer {
            shared: self.shared.clone(),
        }
    }
}

impl<L: Lookup + fmt::Debug> fmt::Debug for Coalescer<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Coalescer")
            .field("lookup", &self.shared.lookup)
            .field("names_in_flight", &self.names_in_flight())
            .finish()
    }
}

/// The slots, even if a thread panicked while holding the lock: every change
/// to them is a single assignment, insertion or removal, never left half done.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<L: Lookup> Coalescer<L> {
    /// Coalesces the lookups made by `lookup`.
    pub fn new(lookup: L) -> Self {
        Coalescer {
            shared: Arc::new(Shared {
                lookup,
                slots: Mutex::default(),
            }),
        }
    }

    /// The answer of a lookup of `name` whose query is sent after this call
    /// was made: the one about to be sent if there is one, else the next one.
    pub async fn get(&self, name: &str) -> Result<L::Output, Abandoned> {
        let mut rx = self.join(name);
        let answer = rx.wait_for(Option::is_some).await.map_err(|_| Abandoned)?;
        answer.clone().ok_or(Abandoned)
    }

    /// How many names have a lookup being made or waiting (and so a task):
    /// zero when every request has been answered.
    pub fn names_in_flight(&self) -> usize {
        lock(&self.shared.slots).len()
    }

    fn join(&self, name: &str) -> watch::Receiver<Option<L::Output>> {
        let mut slots = lock(&self.shared.slots);
        if let Some(slot) = slots.get_mut(name) {
            let flight = if slot.sent {
                slot.next.get_or_insert_with(Flight::new)
            } else {
                &slot.current
            };
            return flight.done.subscribe();
        }
        let current = Flight::new();
        let rx = current.done.subscribe();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                slots.insert(
                    name.to_owned(),
                    Slot {
                        current,
                        sent: false,
                        next: None,
                    },
                );
                drop(slots);
                runtime.spawn(make_lookups(self.shared.clone(), name.to_owned()));
            }
            // No runtime to run the lookup: `current` is dropped here, so the
            // caller gets `Abandoned` rather than a wait that never ends.
            Err(_) => drop(current),
        }
        rx
    }
}

/// Removes the slot of a task that ends without doing so itself (a panic in
/// the lookup, or the runtime dropping the task): its waiters' receivers then
/// see the senders gone.
struct Unregister<'a, L: Lookup> {
    shared: &'a Shared<L>,
    name: &'a str,
    armed: bool,
}

impl<L: Lookup> Drop for Unregister<'_, L> {
    fn drop(&mut self) {
        if self.armed {
            // Only this task removes this name's slot, so it is still ours.
            lock(&self.shared.slots).remove(self.name);
        }
    }
}

/// The task behind a slot: makes its lookups one after the other and hands
/// each answer to the requests that joined it, until no request waits for a
/// next one.
async fn make_lookups<L: Lookup>(shared: Arc<Shared<L>>, name: String) {
    let mut unregister = Unregister {
        shared: &shared,
        name: &name,
        armed: true,
    };
    loop {
        // From here on the query may be out: later arrivals wait for the next.
        if let Some(slot) = lock(&shared.slots).get_mut(&name) {
            slot.sent = true;
        }
        let answer = shared.lookup.lookup(&name).await;
        let (done, again) = {
            let mut slots = lock(&shared.slots);
            let Some(slot) = slots.get_mut(&name) else {
                return; // unreachable: only this task removes the slot
            };
            match slot.next.take() {
                Some(next) if next.done.receiver_count() > 0 => {
                    slot.sent = false;
                    (std::mem::replace(&mut slot.current, next), true)
                }
                // Nobody waits for another lookup (or every joiner left).
                _ => {
                    unregister.armed = false;
                    match slots.remove(&name) {
                        Some(slot) => (slot.current, false),
                        None => return,
                    }
                }
            }
        };
        done.done.send_replace(Some(answer));
        if !again {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    use tokio::sync::Semaphore;

    use super::*;

    /// Answers each lookup with its number (1, 2, ...), once the test lets it
    /// through the gate; a lookup of "panic" panics.
    #[derive(Debug, Clone)]
    struct Numbered {
        started: Arc<AtomicU64>,
        gate: Arc<Semaphore>,
    }

    impl Numbered {
        fn new() -> Self {
            Numbered {
                started: Arc::default(),
                gate: Arc::new(Semaphore::new(0)),
            }
        }

        fn started(&self) -> u64 {
            self.started.load(Ordering::SeqCst)
        }
    }

    impl Lookup for Numbered {
        type Output = u64;

        fn lookup(&self, name: &str) -> impl Future<Output = u64> + Send + 'static {
            let n = self.started.fetch_add(1, Ordering::SeqCst) + 1;
            let gate = self.gate.clone();
            let boom = name == "panic";
            async move {
                gate.acquire().await.expect("gate open").forget();
                assert!(!boom, "lookup {n} panics as asked");
                n
            }
        }
    }

    /// Polls `f` once, so that it joins a lookup, and hands it back.
    async fn arrive<F: Future + Unpin>(mut f: F) -> F {
        std::future::poll_fn(|cx| {
            assert!(
                std::pin::Pin::new(&mut f).poll(cx).is_pending(),
                "answered before any lookup was let through"
            );
            std::task::Poll::Ready(())
        })
        .await;
        f
    }

    async fn until(what: &str, mut ok: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !ok() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[tokio::test]
    async fn requests_that_arrive_before_the_query_share_it() {
        let l = Numbered::new();
        let c = Coalescer::new(l.clone());
        let mut waiting = Vec::new();
        for _ in 0..10 {
            waiting.push(arrive(Box::pin(c.get("a"))).await);
        }
        l.gate.add_permits(1);
        for w in waiting {
            assert_eq!(w.await, Ok(1));
        }
        assert_eq!(l.started(), 1);
        until("the lookup task to end", || c.names_in_flight() == 0).await;
    }

    #[tokio::test]
    async fn a_request_arriving_after_the_query_was_sent_gets_the_next_answer() {
        let l = Numbered::new();
        let c = Coalescer::new(l.clone());
        let first = arrive(Box::pin(c.get("a"))).await;
        until("the first lookup to start", || l.started() == 1).await;
        let second = arrive(Box::pin(c.get("a"))).await;
        let third = arrive(Box::pin(c.get("a"))).await;
        l.gate.add_permits(2);
        assert_eq!(first.await, Ok(1));
        assert_eq!(second.await, Ok(2));
        assert_eq!(third.await, Ok(2), "the second and third share lookup 2");
        assert_eq!(l.started(), 2);
    }

    #[tokio::test]
    async fn names_do_not_share() {
        let l = Numbered::new();
        let c = Coalescer::new(l.clone());
        let a = arrive(Box::pin(c.get("a"))).await;
        let b = arrive(Box::pin(c.get("b"))).await;
        l.gate.add_permits(2);
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        assert_eq!([a.min(b), a.max(b)], [1, 2]);
    }

    #[tokio::test]
    async fn a_next_lookup_every_joiner_left_is_not_made() {
        let l = Numbered::new();
        let c = Coalescer::new(l.clone());
        let first = arrive(Box::pin(c.get("a"))).await;
        until("the first lookup to start", || l.started() == 1).await;
        drop(arrive(Box::pin(c.get("a"))).await);
        l.gate.add_permits(10);
        assert_eq!(first.await, Ok(1));
        until("the lookup task to end", || c.names_in_flight() == 0).await;
        assert_eq!(l.started(), 1);
        assert_eq!(c.get("a").await, Ok(2));
    }

    #[tokio::test]
    async fn a_panicking_lookup_abandons_its_waiters_and_the_name_recovers() {
        let l = Numbered::new();
        let c = Coalescer::new(l.clone());
        let first = arrive(Box::pin(c.get("panic"))).await;
        until("the first lookup to start", || l.started() == 1).await;
        let second = arrive(Box::pin(c.get("panic"))).await;
        l.gate.add_permits(10);
        assert_eq!(first.await, Err(Abandoned));
        assert_eq!(second.await, Err(Abandoned));
        until("the slot to go", || c.names_in_flight() == 0).await;
        let again = c.get("a").await;
        assert_eq!(again, Ok(2));
    }

    #[test]
    fn without_a_runtime_the_caller_is_told_not_left_waiting() {
        let c = Coalescer::new(Numbered::new());
        let rx = c.join("a");
        assert!(rx.has_changed().is_err(), "the sender is gone");
        assert_eq!(c.names_in_flight(), 0);
    }
}
