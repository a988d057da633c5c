//! Validity periods: the window of a certificate we issue, and the check that an imported one
//! is valid now. The time is always the caller's `now`; nothing here reads the clock.

use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;

use crate::CaError;

/// The longest validity, in days, that [`Authority::generate`](crate::Authority::generate)
/// and [`server_cert::generate`](crate::server_cert::generate) accept (about 100 years).
pub const MAX_DAYS: u32 = 36_500;

/// How far before `now` an issued certificate starts, so that clients whose clocks run a
/// little behind the gateway's accept it at once.
pub(crate) const BACKDATE: Duration = Duration::hours(1);

/// The `(not_before, not_after)` of a certificate issued at `now` for `days` days.
///
/// # Errors
/// [`CaError::DaysOutOfRange`] unless `1 <= days <= MAX_DAYS`.
pub(crate) fn window(
    now: OffsetDateTime,
    days: u32,
) -> Result<(OffsetDateTime, OffsetDateTime), CaError> {
    if days == 0 || days > MAX_DAYS {
        return Err(CaError::DaysOutOfRange { days });
    }
    let now = now.replace_nanosecond(0).unwrap_or(now);
    Ok((now - BACKDATE, now + Duration::days(i64::from(days))))
}

/// Checks that `cert` is within its validity period at `now`.
///
/// # Errors
/// [`CaError::Expired`] or [`CaError::NotYetValid`].
pub(crate) fn check_current(
    cert: &X509Certificate<'_>,
    now: OffsetDateTime,
) -> Result<(), CaError> {
    let not_before = cert.validity().not_before.to_datetime();
    let not_after = cert.validity().not_after.to_datetime();
    if now > not_after {
        return Err(CaError::Expired { not_after });
    }
    if now < not_before {
        return Err(CaError::NotYetValid { not_before });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_is_backdated_and_counts_days_from_now() {
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let (not_before, not_after) = window(now, 10).unwrap();
        assert_eq!(not_before, now - Duration::hours(1));
        assert_eq!(not_after, now + Duration::days(10));
    }

    #[test]
    fn window_refuses_zero_and_absurd_days() {
        let now = OffsetDateTime::UNIX_EPOCH;
        assert!(matches!(
            window(now, 0),
            Err(CaError::DaysOutOfRange { days: 0 })
        ));
        assert!(matches!(
            window(now, MAX_DAYS + 1),
            Err(CaError::DaysOutOfRange { .. })
        ));
    }
}
