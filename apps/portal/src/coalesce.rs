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
//! queues up. A request that finds nothing in flight makes its lookup itself, in its own
//! future, at once: a lone request costs what it did before coalescing. If requests
//! arrived meanwhile, a task takes over and makes their lookups one after the other; it
//! lives only while a request waits. A request dropped while it waits therefore takes
//! nothing with it: the others still get the answer, and a next lookup that every joiner
//! has left is not sent at all. If the request making the first lookup is dropped, the
//! task takes over for the requests waiting behind it. If the task dies (a panic in the
//! lookup, or the runtime shutting down), its waiters get [`Abandoned`] instead of
//! waiting forever. The lookup itself must end in bounded time (the DNS client's
//! timeouts see to it): the coalescer adds no timeout of its own.

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

/// The lookups of one name. A slot exists exactly while a lookup of the name
/// is being made or waited for.
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
        let mut rx = match self.join(name) {
            Joined::Run => return Ok(self.run_first(name).await),
            Joined::Wait(rx) => rx,
        };
        let answer = rx.wait_for(Option::is_some).await.map_err(|_| Abandoned)?;
        answer.clone().ok_or(Abandoned)
    }

    /// How many names have a lookup being made or waiting: zero once every
    /// request has been answered (and no task is left running).
    pub fn names_in_flight(&self) -> usize {
        lock(&self.shared.slots).len()
    }

    fn join(&self, name: &str) -> Joined<L::Output> {
        let mut slots = lock(&self.shared.slots);
        if let Some(slot) = slots.get_mut(name) {
            let flight = if slot.sent {
                slot.next.get_or_insert_with(Flight::new)
            } else {
                &slot.current
            };
            return Joined::Wait(flight.done.subscribe());
        }
        // Nothing in flight: this request makes the lookup itself, at once
        // (so `sent` from the start), and others wait for the next one.
        slots.insert(
            name.to_owned(),
            Slot {
                current: Flight::new(),
                sent: true,
                next: None,
            },
        );
        Joined::Run
    }

    /// Makes the lookup in the caller's own future (no task, no hand-off when
    /// requests do not overlap), then hands the rest to a task if requests
    /// arrived meanwhile.
    async fn run_first(&self, name: &str) -> L::Output {
        let mut hand_over = HandOver {
            shared: &self.shared,
            name,
            armed: true,
        };
        let answer = self.shared.lookup.lookup(name).await;
        hand_over.armed = false;
        let (done, again) = end_current(&self.shared, name);
        if again {
            make_lookups_in_a_task(&self.shared, name);
        }
        if let Some(done) = done {
            done.done.send_replace(Some(answer.clone()));
        }
        answer
    }
}

/// How a request takes part in a lookup.
enum Joined<T> {
    /// It makes the lookup itself.
    Run,
    /// It waits for the answer of a lookup made by someone else.
    Wait(watch::Receiver<Option<T>>),
}

/// Ends the current lookup of `name`: returns its flight (to publish the
/// answer to), and whether a next lookup has requests waiting and is now the
/// current one. When it has none, the slot is removed.
fn end_current<L: Lookup>(shared: &Shared<L>, name: &str) -> (Option<Flight<L::Output>>, bool) {
    let mut slots = lock(&shared.slots);
    let Some(slot) = slots.get_mut(name) else {
        return (None, false);
    };
    match slot.next.take() {
        Some(next) if next.done.receiver_count() > 0 => {
            // Not sent yet: requests arriving until the task sends it join it.
            slot.sent = false;
            (Some(std::mem::replace(&mut slot.current, next)), true)
        }
        // Nobody waits for another lookup (or every joiner left).
        _ => (slots.remove(name).map(|slot| slot.current), false),
    }
}

/// Starts the task that makes the lookups of `name` still wanted. Without a
/// runtime to run it, the slot goes: its waiters get [`Abandoned`] rather than
/// a wait that never ends.
fn make_lookups_in_a_task<L: Lookup>(shared: &Arc<Shared<L>>, name: &str) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn(make_lookups(shared.clone(), name.to_owned()));
        }
        Err(_) => {
            lock(&shared.slots).remove(name);
        }
    }
}

/// A request making the first lookup itself was dropped (its client went
/// away) or panicked before the answer: the requests that joined it still
/// need one, so a task makes the lookup again (a query sent after they
/// arrived, as the rule wants).
struct HandOver<'a, L: Lookup> {
    shared: &'a Arc<Shared<L>>,
    name: &'a str,
    armed: bool,
}

impl<L: Lookup> Drop for HandOver<'_, L> {
    fn drop(&mut self) {
        if self.armed {
            make_lookups_in_a_task(self.shared, self.name);
        }
    }
}

/// Removes the slot of a task that ends without doing so itself (a panic in
/// the lookup, or the runtime dropping the task, even before its first poll):
/// its waiters' receivers then see the senders gone.
struct Unregister<L: Lookup> {
    shared: Arc<Shared<L>>,
    name: String,
    armed: bool,
}

impl<L: Lookup> Unregister<L> {
    /// The slot is gone already (the task removed it as it ended).
    fn disarm(&mut self) {
        self.armed = false;
    }
}

impl<L: Lookup> Drop for Unregister<L> {
    fn drop(&mut self) {
        if self.armed {
            // Only the slot's task removes it while the task runs: still ours.
            lock(&self.shared.slots).remove(&self.name);
        }
    }
}

/// The task behind a slot: makes its lookups one after the other and hands
/// each answer to the requests that joined it, until no request waits for a
/// next one. The guard is made before the future is first polled.
fn make_lookups<L: Lookup>(shared: Arc<Shared<L>>, name: String) -> impl Future<Output = ()> {
    let mut task = Unregister {
        shared,
        name,
        armed: true,
    };
    async move {
        let (shared, name) = (task.shared.clone(), task.name.clone());
        loop {
            {
                let mut slots = lock(&shared.slots);
                let Some(slot) = slots.get_mut(&name) else {
                    task.disarm();
                    return;
                };
                // A lookup everyone has left (after a hand-over) is skipped.
                if slot.current.done.receiver_count() == 0 {
                    match slot.next.take() {
                        Some(next) if next.done.receiver_count() > 0 => slot.current = next,
                        _ => {
                            slots.remove(&name);
                            task.disarm();
                            return;
                        }
                    }
                }
                // From here on the query may be out: later arrivals wait for the next.
                slot.sent = true;
            }
            let answer = shared.lookup.lookup(&name).await;
            let (done, again) = end_current(&shared, &name);
            if !again {
                task.disarm();
            }
            if let Some(done) = done {
                done.done.send_replace(Some(answer));
            }
            if !again {
                return;
            }
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
    async fn requests_that_arrive_while_a_lookup_is_out_share_the_next() {
        let l = Numbered::new();
        let c = Coalescer::new(l.clone());
        // The first request makes its lookup at once, in its own future.
        let first = arrive(Box::pin(c.get("a"))).await;
        assert_eq!(l.started(), 1);
        let mut waiting = Vec::new();
        for _ in 0..10 {
            waiting.push(arrive(Box::pin(c.get("a"))).await);
        }
        l.gate.add_permits(2);
        assert_eq!(first.await, Ok(1));
        for w in waiting {
            assert_eq!(w.await, Ok(2));
        }
        assert_eq!(l.started(), 2);
        until("the lookup task to end", || c.names_in_flight() == 0).await;
    }

    #[tokio::test]
    async fn a_handed_over_lookup_is_shared_until_its_query_is_sent() {
        let l = Numbered::new();
        let c = Coalescer::new(l.clone());
        let first = arrive(Box::pin(c.get("a"))).await;
        let second = arrive(Box::pin(c.get("a"))).await;
        l.gate.add_permits(1);
        // The first answer comes back without this task yielding, so the task
        // now in charge of lookup 2 has not run: its query is not sent yet.
        assert_eq!(first.await, Ok(1));
        assert_eq!(l.started(), 1);
        let third = arrive(Box::pin(c.get("a"))).await;
        l.gate.add_permits(1);
        assert_eq!(second.await, Ok(2));
        assert_eq!(third.await, Ok(2), "joined before the query was sent");
        assert_eq!(l.started(), 2);
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
        drop(arrive(Box::pin(c.get("a"))).await);
        l.gate.add_permits(10);
        assert_eq!(first.await, Ok(1));
        until("the slot to go", || c.names_in_flight() == 0).await;
        assert_eq!(l.started(), 1);
        assert_eq!(c.get("a").await, Ok(2));
    }

    #[tokio::test]
    async fn a_dropped_first_request_hands_the_waiters_over_to_a_task() {
        let l = Numbered::new();
        let c = Coalescer::new(l.clone());
        let first = arrive(Box::pin(c.get("a"))).await;
        let second = arrive(Box::pin(c.get("a"))).await;
        drop(first);
        l.gate.add_permits(1);
        assert_eq!(second.await, Ok(2));
        until("the lookup task to end", || c.names_in_flight() == 0).await;
    }

    #[tokio::test]
    async fn a_panicking_lookup_abandons_its_waiters_and_the_name_recovers() {
        let l = Numbered::new();
        let c = Coalescer::new(l.clone());
        let first = {
            let c = c.clone();
            tokio::spawn(async move { c.get("panic").await })
        };
        until("the first lookup to start", || l.started() == 1).await;
        let second = arrive(Box::pin(c.get("panic"))).await;
        l.gate.add_permits(10);
        let err = first.await.expect_err("the first request panicked");
        assert!(err.is_panic());
        // A task takes over for the second, whose lookup panics too.
        assert_eq!(second.await, Err(Abandoned));
        until("the slot to go", || c.names_in_flight() == 0).await;
        assert_eq!(c.get("a").await, Ok(3));
    }
}
