//! Login attempts in the log and the metrics (SPEC §7): a failed or refused login is one
//! line with the user (when the method shows it), the mechanism and the server's reply
//! code, never the credential; every attempt counts in `popgate_logins_total{result}`.
//!
//! The POP3 core reports attempts as `Event::Login`; a success is also logged by the
//! driver as "login succeeded" when the core's `LoggedIn` arrives.

use tracing::info;

use crate::metrics;
use crate::pop3::{LoginAttempt, LoginResult};

/// Logs and counts one attempt.
pub fn record(attempt: &LoginAttempt) {
    let result = match attempt.result {
        LoginResult::Ok => "ok",
        LoginResult::Failed => "failed",
        LoginResult::RefusedByPolicy => "refused_by_policy",
    };
    metrics::login(result);
    if attempt.result == LoginResult::Ok {
        return;
    }
    // A bad peer is `info` (STYLE §6): a hostile network must not flood the log.
    info!(
        user = attempt.user.as_deref().unwrap_or(""),
        mechanism = %attempt.mechanism,
        result,
        reply_code = attempt.resp_code.as_deref().unwrap_or(""),
        "login failed"
    );
}
