//! The time source the services answer from, as an injectable closure so
//! tests can pin it; both stock-price and weather derive their answers from
//! it.

use std::sync::Arc;

/// The current time as Unix seconds; injected so tests can pin it.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The wall clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    })
}
