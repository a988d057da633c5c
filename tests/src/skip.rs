//! The one way a test skips. Under `CI=true` a test never skips: a missing peer, tool or
//! privilege fails it, naming what is missing, because CI must run everything. Elsewhere
//! the test returns early after a loud `SKIPPED` line on stderr, never silently.

use crate::peers::in_ci;

/// Whether the process runs as root (effective uid 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// True when `present`; otherwise fails the calling test under `CI=true`, else prints
/// `SKIPPED <test>: <missing>` and returns false. Use [`require!`](crate::require).
///
/// # Panics
/// Under `CI=true`, when `present` is false.
pub fn present_or_skip(present: bool, missing: &str) -> bool {
    if present {
        return true;
    }
    // libtest names each test's thread after the test.
    let current = std::thread::current();
    let test = current.name().unwrap_or("this test");
    let message = format!("{test}: {missing}");
    assert!(!in_ci(), "CI=true and {message}");
    eprintln!("SKIPPED {message}");
    false
}

/// Returns from the calling test when `condition` is false outside CI; fails it under CI.
///
/// ```no_run
/// use popgate_tests::require;
/// use popgate_tests::skip::is_root;
///
/// fn listens_on_port_110() {
///     require!(is_root(), "needs root (a port below 1024)");
///     // ... the test proper
/// }
/// ```
#[macro_export]
macro_rules! require {
    ($condition:expr, $missing:expr $(,)?) => {
        if !$crate::skip::present_or_skip($condition, $missing) {
            return;
        }
    };
}
