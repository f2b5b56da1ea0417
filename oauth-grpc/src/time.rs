//! Seconds since the Unix epoch, the unit of JWT and introspection times (RFC 7519
//! NumericDate), in one place.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `time` in whole seconds since the epoch; 0 for a time before it.
pub(crate) fn unix(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Now, in whole seconds since the epoch.
pub(crate) fn unix_now() -> u64 {
    unix(SystemTime::now())
}

/// The time `seconds` after the epoch.
pub(crate) fn from_unix(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_whole_seconds() {
        assert_eq!(unix(from_unix(1_700_000_000)), 1_700_000_000);
        assert_eq!(unix(UNIX_EPOCH - Duration::from_secs(5)), 0);
        assert!(unix_now() > 1_700_000_000);
    }
}
