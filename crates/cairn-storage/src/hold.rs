//! A gate a test closes to hold a writer thread back.
//!
//! Why it exists: the contract tests observe what readers see after an append is submitted
//! but before it is durable. Production code never closes the gate; an open gate costs one
//! uncontended mutex lock per group.

use std::sync::Arc;

/// Closed while some [`WriteHold`] is alive.
#[derive(Default)]
pub(crate) struct Gate {
    held: std::sync::Mutex<bool>,
    cv: std::sync::Condvar,
}

impl Gate {
    /// Blocks while the gate is closed.
    pub(crate) fn wait_open(&self) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        while *held {
            held = self.cv.wait(held).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn set(&self, value: bool) {
        *self.held.lock().unwrap_or_else(|p| p.into_inner()) = value;
        self.cv.notify_all();
    }

    /// Closes the gate until the returned guard is dropped.
    pub(crate) fn hold(self: &Arc<Self>) -> WriteHold {
        self.set(true);
        WriteHold(self.clone())
    }
}

/// While alive, the writer writes nothing (see the stores' `hold_writes`).
pub struct WriteHold(Arc<Gate>);

impl Drop for WriteHold {
    fn drop(&mut self) {
        self.0.set(false);
    }
}
