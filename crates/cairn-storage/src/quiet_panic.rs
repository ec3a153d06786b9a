//! Turning a panic inside the storage engine into an error, without a backtrace on stderr.
//!
//! redb answers some corrupt pages by panicking ("entered unreachable code") rather than
//! returning an error. A server that meets a damaged log must say so plainly and stop
//! (docs/operations.md), not print a panic backtrace that reads like a bug in Cairn. So
//! calls into the engine run inside [`catch`], which catches the unwind and keeps the
//! process-wide panic hook quiet for that thread while it runs; every other panic is
//! reported as before.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

static HOOK: Once = Once::new();

/// Runs `f`; a panic inside it becomes `Err(message)` and prints nothing.
pub(crate) fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info);
            }
        }));
    });
    let was = QUIET.with(|q| q.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was));
    result.map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn panic_becomes_error_and_values_pass_through() {
        assert_eq!(super::catch(|| 7), Ok(7));
        let e = super::catch(|| -> u8 { panic!("page 12 is corrupt") }).unwrap_err();
        assert_eq!(e, "page 12 is corrupt");
        let e = super::catch(|| -> u8 { panic!("{}", String::from("owned")) }).unwrap_err();
        assert_eq!(e, "owned");
    }
}
