//! Times travel as epoch milliseconds inside the system and as RFC 3339 in the API.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `2026-11-21T10:12:50.123Z` (UTC, milliseconds).
pub fn to_rfc3339(epoch_ms: i64) -> String {
    let nanos = i128::from(epoch_ms) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| epoch_ms.to_string())
}

/// Parses an RFC 3339 date-time with any offset into epoch milliseconds.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

pub const DAY_MS: i64 = 86_400_000;

/// Days since the Unix epoch of a UTC instant (the key of daily counters).
pub fn epoch_day(epoch_ms: i64) -> i64 {
    epoch_ms.div_euclid(DAY_MS)
}

/// The UTC year of an instant.
pub fn year_of(epoch_ms: i64) -> i32 {
    date_of(epoch_ms)[..4].parse().unwrap_or(1970)
}

/// `YYYY-MM-DD` of a UTC instant.
pub fn date_of(epoch_ms: i64) -> String {
    to_rfc3339(epoch_ms).chars().take(10).collect()
}

/// `YYYY-MM-DD HH:MM:SS` of a UTC instant (MailWizz's `send_at`).
pub fn datetime_utc(epoch_ms: i64) -> String {
    to_rfc3339(epoch_ms)
        .chars()
        .take(19)
        .map(|c| if c == 'T' { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetime_utc_is_mailwizz_send_at() {
        assert_eq!(datetime_utc(1_763_719_970_123), "2025-11-21 10:12:50");
    }

    #[test]
    fn round_trip_and_offsets() {
        assert_eq!(to_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(to_rfc3339(1_795_256_770_123), "2026-11-21T10:26:10.123Z");
        assert_eq!(year_of(1_795_256_770_123), 2026);
        assert_eq!(
            parse_rfc3339("2026-11-21T10:26:10.123Z"),
            Some(1_795_256_770_123)
        );
        assert_eq!(
            parse_rfc3339("2026-11-21T11:26:10.123+01:00"),
            Some(1_795_256_770_123)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_rfc3339("2026-11-21"), None);
        assert_eq!(date_of(1_795_256_770_123), "2026-11-21");
        assert_eq!(epoch_day(1_795_256_770_123), 20_778);
        assert_eq!(epoch_day(-1), -1);
    }
}
