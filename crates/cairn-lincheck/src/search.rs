//! Wing & Gong's search for a linearization of one key's history, with Lowe's
//! memoisation of (operations linearized so far, state): events sit in a doubly linked
//! list by time; the search linearizes the first invocation it can, restarts from the
//! head, and backtracks when it meets the completion of an operation it has not placed.
//! Indeterminate operations have no completion event, so they may be placed at any point
//! after their invocation, or never.

use std::collections::HashSet;

use crate::history::Entry;
use crate::model::{step, Interner, KeyState, MEntry};

/// The answer for one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    Violation,
    /// The step budget ran out first.
    Unknown,
}

#[derive(Clone, Copy)]
enum Ev {
    Head,
    Call(usize),
    Return(usize),
}

/// Searches one key's operations (all on the same key) for a linearization.
pub(crate) fn check_key(entries: &[Entry], budget: u64) -> Verdict {
    let mut interner = Interner::for_history(entries);
    let ops: Vec<MEntry> = entries.iter().map(|e| interner.entry(e)).collect();
    search(&ops, budget)
}

fn search(ops: &[MEntry], budget: u64) -> Verdict {
    // Events by time; at equal times invocations come first (they overlap).
    let mut evs: Vec<(u64, u8, Ev)> = Vec::with_capacity(ops.len() * 2);
    for (i, o) in ops.iter().enumerate() {
        evs.push((o.call, 0, Ev::Call(i)));
        if o.definite() {
            evs.push((o.ret.max(o.call), 1, Ev::Return(i)));
        }
    }
    evs.sort_by_key(|(t, k, _)| (*t, *k));
    let mut list = List::new(evs.into_iter().map(|(_, _, e)| e).collect(), ops.len());
    let twin = earlier_twins(ops);

    let mut remaining = ops.iter().filter(|o| o.definite()).count();
    let mut state = KeyState::default();
    let mut placed = Bits::new(ops.len());
    let mut seen: HashSet<(Bits, KeyState)> = HashSet::new();
    let mut stack: Vec<(usize, KeyState)> = Vec::new();
    let mut entry = list.next[0];
    let mut steps = 0u64;
    loop {
        if remaining == 0 {
            return Verdict::Linearizable;
        }
        steps += 1;
        if steps > budget {
            return Verdict::Unknown;
        }
        let ev = if entry == list.end() {
            None
        } else {
            Some(list.ev[entry])
        };
        match ev {
            Some(Ev::Call(i)) => {
                // Identical indeterminate operations are interchangeable: place them in
                // invocation order only (the earlier one can always stand in).
                let blocked = twin[i].is_some_and(|j| !placed.get(j));
                if blocked {
                    entry = list.next[entry];
                    continue;
                }
                if let Some(next) = step(state, ops[i].op, ops[i].out) {
                    let mut p = placed.clone();
                    p.set(i, true);
                    if seen.insert((p.clone(), next)) {
                        stack.push((i, state));
                        state = next;
                        placed = p;
                        list.lift(i);
                        if ops[i].definite() {
                            remaining -= 1;
                        }
                        entry = list.next[0];
                        continue;
                    }
                }
                entry = list.next[entry];
            }
            // The completion of an operation not placed yet (or the end of the list):
            // undo the last placement and try the next candidate after it.
            Some(Ev::Return(_)) | None => {
                let Some((j, old)) = stack.pop() else {
                    return Verdict::Violation;
                };
                state = old;
                placed.set(j, false);
                list.unlift(j);
                if ops[j].definite() {
                    remaining += 1;
                }
                entry = list.next[list.call_node[j]];
            }
            Some(Ev::Head) => entry = list.next[entry],
        }
    }
}

/// For each indeterminate operation, the last one invoked before it with the same
/// operation (values nobody reads count as equal), if any.
fn earlier_twins(ops: &[MEntry]) -> Vec<Option<usize>> {
    let mut order: Vec<usize> = (0..ops.len()).collect();
    order.sort_by_key(|i| ops[*i].call);
    let mut last: std::collections::HashMap<MOpKey, usize> = Default::default();
    let mut twin = vec![None; ops.len()];
    for i in order {
        if ops[i].definite() {
            continue;
        }
        let k = MOpKey(ops[i].op);
        twin[i] = last.insert(k, i);
    }
    twin
}

/// [`crate::model::MOp`] as a map key.
#[derive(PartialEq, Eq, Hash)]
struct MOpKey(crate::model::MOp);

/// The event list: node 0 is the head, node `len` the end sentinel.
struct List {
    ev: Vec<Ev>,
    next: Vec<usize>,
    prev: Vec<usize>,
    call_node: Vec<usize>,
    ret_node: Vec<Option<usize>>,
}

impl List {
    fn new(events: Vec<Ev>, ops: usize) -> List {
        let n = events.len() + 2;
        let mut ev = vec![Ev::Head];
        ev.extend(events);
        ev.push(Ev::Head);
        let mut call_node = vec![0; ops];
        let mut ret_node = vec![None; ops];
        for (node, e) in ev.iter().enumerate() {
            match e {
                Ev::Call(i) => call_node[*i] = node,
                Ev::Return(i) => ret_node[*i] = Some(node),
                Ev::Head => {}
            }
        }
        List {
            ev,
            next: (1..=n).collect(),
            prev: (0..n).map(|i| i.saturating_sub(1)).collect(),
            call_node,
            ret_node,
        }
    }

    fn end(&self) -> usize {
        self.ev.len() - 1
    }

    fn unlink(&mut self, node: usize) {
        let (p, n) = (self.prev[node], self.next[node]);
        self.next[p] = n;
        self.prev[n] = p;
    }

    fn relink(&mut self, node: usize) {
        let (p, n) = (self.prev[node], self.next[node]);
        self.next[p] = node;
        self.prev[n] = node;
    }

    fn lift(&mut self, op: usize) {
        self.unlink(self.call_node[op]);
        if let Some(r) = self.ret_node[op] {
            self.unlink(r);
        }
    }

    /// Undoes the last [`List::lift`] (lifts are undone in reverse order).
    fn unlift(&mut self, op: usize) {
        if let Some(r) = self.ret_node[op] {
            self.relink(r);
        }
        self.relink(self.call_node[op]);
    }
}

/// A fixed-size bit set (which operations are placed), hashable for the memo.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }

    fn get(&self, i: usize) -> bool {
        self.0[i / 64] & (1u64 << (i % 64)) != 0
    }

    fn set(&mut self, i: usize, on: bool) {
        let (w, b) = (i / 64, 1u64 << (i % 64));
        if on {
            self.0[w] |= b;
        } else {
            self.0[w] &= !b;
        }
    }
}
