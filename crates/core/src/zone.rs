//! Time zones and sending windows: a tenant's zone (IANA name), local date-times read in
//! it, and a daily window such as 08:00–20:00 with the next time it opens.
//!
//! The zone rules come from jiff with the IANA database compiled into the binary, so the
//! answers are the same on every node whatever its `/usr/share/zoneinfo` holds.

use jiff::civil::{DateTime, Time};
pub use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use serde::{Deserialize, Serialize};

/// An IANA time zone (`Europe/Paris`), or `None` with why the name is not one.
pub fn parse_zone(name: &str) -> Result<TimeZone, String> {
    if name.eq_ignore_ascii_case("utc") {
        return Ok(TimeZone::UTC);
    }
    TimeZone::get(name)
        .map_err(|_| format!("`{name}` is not an IANA time zone (e.g. Europe/Paris)"))
}

/// The zone named, UTC when it is absent or unknown (names are checked when written).
pub fn zone_or_utc(name: Option<&str>) -> TimeZone {
    name.and_then(|n| parse_zone(n).ok())
        .unwrap_or(TimeZone::UTC)
}

/// A contact's own zone: its `time_zone` (or `timezone`) attribute when that names one.
pub fn contact_zone(metadata_json: &str) -> Option<TimeZone> {
    let metadata: serde_json::Value = serde_json::from_str(metadata_json).ok()?;
    ["time_zone", "timezone"]
        .iter()
        .find_map(|key| metadata.get(key)?.as_str())
        .and_then(|name| parse_zone(name).ok())
}

impl SendWindow {
    /// The zone the window is read in for one recipient.
    pub fn zone_for(&self, tenant: &TimeZone, contact_metadata: Option<&str>) -> TimeZone {
        match self.zone {
            WindowZone::Tenant => tenant.clone(),
            WindowZone::Recipient => contact_metadata
                .and_then(contact_zone)
                .unwrap_or_else(|| tenant.clone()),
        }
    }

    /// `08:00–20:00 Europe/Paris`, for the reason a message waits.
    pub fn describe(&self, zone: &TimeZone) -> String {
        format!(
            "{}–{} {}",
            self.from,
            self.to,
            zone.iana_name().unwrap_or("UTC")
        )
    }
}

fn zoned(epoch_ms: i64, zone: &TimeZone) -> Option<Zoned> {
    Some(
        Timestamp::from_millisecond(epoch_ms)
            .ok()?
            .to_zoned(zone.clone()),
    )
}

/// A date-time as a client writes it: RFC 3339 with an offset is an instant; without
/// one (`2026-12-31T08:00` or `2026-12-31 08:00:00`) it is read in `zone`. A local time
/// that a clock change skips is moved forward past the gap; one it repeats is the first.
pub fn parse_datetime(text: &str, zone: &TimeZone) -> Option<i64> {
    if let Some(at) = crate::timefmt::parse_rfc3339(text) {
        return Some(at);
    }
    let local: DateTime = text.trim().parse().ok()?;
    let at = local.to_zoned(zone.clone()).ok()?;
    Some(at.timestamp().as_millisecond())
}

/// Where a window's hours are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WindowZone {
    /// The tenant's time zone (UTC when it has none).
    #[default]
    Tenant,
    /// The recipient's own zone (the contact's `time_zone` attribute), else the tenant's.
    Recipient,
}

/// Daily hours in which messages may be handed to a transport, such as 08:00–20:00;
/// `from` after `to` spans midnight (22:00–06:00).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendWindow {
    /// Opening time, `HH:MM`.
    pub from: String,
    /// Closing time, `HH:MM` (not included).
    pub to: String,
    #[serde(default)]
    pub zone: WindowZone,
}

fn parse_hhmm(text: &str) -> Option<Time> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    Time::new(h.parse().ok()?, m.parse().ok()?, 0, 0).ok()
}

impl SendWindow {
    /// What is wrong with the window, with the field it is about.
    pub fn check(&self) -> Result<(), (&'static str, &'static str)> {
        let from =
            parse_hhmm(&self.from).ok_or(("from", "must be a time as HH:MM (00:00–23:59)"))?;
        let to = parse_hhmm(&self.to).ok_or(("to", "must be a time as HH:MM (00:00–23:59)"))?;
        if from == to {
            return Err((
                "to",
                "must differ from `from` (leave the window out to send at any hour)",
            ));
        }
        Ok(())
    }

    /// `None` when the window is open at `now` in `zone`; else when it next opens (epoch
    /// ms). A window that does not parse is treated as always open (it was checked when
    /// written).
    pub fn next_opening(&self, now: i64, zone: &TimeZone) -> Option<i64> {
        let (from, to) = (parse_hhmm(&self.from)?, parse_hhmm(&self.to)?);
        let here = zoned(now, zone)?;
        let t = here.time();
        let open = if from < to {
            from <= t && t < to
        } else {
            t >= from || t < to
        };
        if open {
            return None;
        }
        // Closed: today's opening if it is still ahead, else tomorrow's.
        let today = here.date();
        let day = if t < from {
            today
        } else {
            today.tomorrow().ok()?
        };
        let at = day.to_datetime(from).to_zoned(zone.clone()).ok()?;
        Some(at.timestamp().as_millisecond())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        crate::timefmt::parse_rfc3339(text).unwrap()
    }

    fn window(from: &str, to: &str) -> SendWindow {
        SendWindow {
            from: from.into(),
            to: to.into(),
            zone: WindowZone::Tenant,
        }
    }

    #[test]
    fn zones_are_iana_names() {
        assert!(parse_zone("Europe/Paris").is_ok());
        assert!(parse_zone("UTC").is_ok());
        let e = parse_zone("Mars/Olympus").unwrap_err();
        assert!(e.contains("Mars/Olympus"), "{e}");
        assert_eq!(zone_or_utc(Some("nowhere")), TimeZone::UTC);
    }

    #[test]
    fn a_local_time_is_read_in_the_zone_and_an_offset_wins() {
        let paris = parse_zone("Europe/Paris").unwrap();
        // Winter: UTC+1.
        assert_eq!(
            parse_datetime("2026-12-31T08:00", &paris),
            Some(at("2026-12-31T07:00:00Z"))
        );
        assert_eq!(
            parse_datetime("2026-07-01 08:00:00", &paris),
            Some(at("2026-07-01T06:00:00Z"))
        );
        assert_eq!(
            parse_datetime("2026-12-31T08:00:00+09:00", &paris),
            Some(at("2026-12-30T23:00:00Z"))
        );
        assert_eq!(parse_datetime("tomorrow", &paris), None);
    }

    #[test]
    fn a_day_window_opens_today_or_tomorrow() {
        let paris = parse_zone("Europe/Paris").unwrap();
        let w = window("08:00", "20:00");
        assert_eq!(w.check(), Ok(()));
        // 10:00 in Paris: open.
        assert_eq!(w.next_opening(at("2026-12-03T09:00:00Z"), &paris), None);
        // 06:30 in Paris: opens at 08:00 the same day.
        assert_eq!(
            w.next_opening(at("2026-12-03T05:30:00Z"), &paris),
            Some(at("2026-12-03T07:00:00Z"))
        );
        // 20:00 sharp is closed; opens tomorrow.
        assert_eq!(
            w.next_opening(at("2026-12-03T19:00:00Z"), &paris),
            Some(at("2026-12-04T07:00:00Z"))
        );
        // The same hours in UTC.
        assert_eq!(
            w.next_opening(at("2026-12-03T05:30:00Z"), &TimeZone::UTC),
            Some(at("2026-12-03T08:00:00Z"))
        );
    }

    #[test]
    fn a_night_window_spans_midnight() {
        let w = window("22:00", "06:00");
        let utc = TimeZone::UTC;
        assert_eq!(w.next_opening(at("2026-12-03T23:00:00Z"), &utc), None);
        assert_eq!(w.next_opening(at("2026-12-03T05:59:00Z"), &utc), None);
        assert_eq!(
            w.next_opening(at("2026-12-03T12:00:00Z"), &utc),
            Some(at("2026-12-03T22:00:00Z"))
        );
    }

    #[test]
    fn the_opening_follows_clock_changes() {
        // Paris moves to summer time on 2026-03-29: 08:00 is then 06:00 UTC, not 07:00.
        let paris = parse_zone("Europe/Paris").unwrap();
        let w = window("08:00", "20:00");
        assert_eq!(
            w.next_opening(at("2026-03-28T20:00:00Z"), &paris),
            Some(at("2026-03-29T06:00:00Z"))
        );
    }

    #[test]
    fn a_recipient_window_reads_the_contact_zone_else_the_tenant() {
        let paris = parse_zone("Europe/Paris").unwrap();
        let mut w = window("08:00", "20:00");
        assert_eq!(
            w.zone_for(&paris, Some(r#"{"time_zone":"Asia/Tokyo"}"#)),
            paris
        );
        w.zone = WindowZone::Recipient;
        let tokyo = w.zone_for(&paris, Some(r#"{"time_zone":"Asia/Tokyo"}"#));
        assert_eq!(tokyo.iana_name(), Some("Asia/Tokyo"));
        assert_eq!(
            w.zone_for(&paris, Some(r#"{"timezone":"Nowhere/Land"}"#)),
            paris
        );
        assert_eq!(w.zone_for(&paris, None), paris);
        assert_eq!(w.describe(&tokyo), "08:00–20:00 Asia/Tokyo");
    }

    #[test]
    fn bad_windows_name_their_field() {
        assert_eq!(window("8h", "20:00").check().unwrap_err().0, "from");
        assert_eq!(window("08:00", "24:00").check().unwrap_err().0, "to");
        assert_eq!(window("08:00", "08:00").check().unwrap_err().0, "to");
    }
}
