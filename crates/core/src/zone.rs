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

/// The IANA name of a zone as written (`europe/paris` → `Europe/Paris`), or why it is
/// not one: what a contact's `time_zone` is stored as.
pub fn canonical_zone(name: &str) -> Result<String, String> {
    let zone = parse_zone(name.trim())?;
    Ok(zone.iana_name().unwrap_or("UTC").to_owned())
}

/// Each country's most populous zone (`country_zones.tab`, from the tz database).
const COUNTRY_ZONES: &str = include_str!("country_zones.tab");

/// The most populous zone of a country (ISO 3166 alpha-2, any case).
pub fn country_zone(country: &str) -> Option<TimeZone> {
    let code = country.trim();
    if code.len() != 2 {
        return None;
    }
    COUNTRY_ZONES
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (cc, zone) = l.split_once('\t')?;
            cc.eq_ignore_ascii_case(code).then_some(zone)
        })
        .and_then(|zone| parse_zone(zone).ok())
}

/// A recipient's zone: its own `time_zone`, else its country's most populous one; `None`
/// when it has neither (the tenant's zone applies).
pub fn recipient_zone(time_zone: Option<&str>, country: Option<&str>) -> Option<TimeZone> {
    time_zone
        .and_then(|name| parse_zone(name).ok())
        .or_else(|| country.and_then(country_zone))
}

impl SendWindow {
    /// The zone the window is read in for one recipient (`recipient_zone`).
    pub fn zone_for(&self, tenant: &TimeZone, recipient: Option<&TimeZone>) -> TimeZone {
        match (self.zone, recipient) {
            (WindowZone::Recipient, Some(own)) => own.clone(),
            _ => tenant.clone(),
        }
    }

    /// `08:00–20:00 Europe/Paris`, `mon–fri 08:00–20:00 Europe/Paris`, for the reason a
    /// message waits.
    pub fn describe(&self, zone: &TimeZone) -> String {
        let days = match &self.days {
            Some(days) if days.len() < 7 => {
                let names: Vec<&str> = days.iter().map(|d| d.as_str()).collect();
                format!("{} ", names.join(","))
            }
            _ => String::new(),
        };
        format!(
            "{days}{}–{} {}",
            self.from,
            self.to,
            zone.iana_name().unwrap_or("UTC")
        )
    }
}

/// A day of the week, as windows name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Day {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Day {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mon => "mon",
            Self::Tue => "tue",
            Self::Wed => "wed",
            Self::Thu => "thu",
            Self::Fri => "fri",
            Self::Sat => "sat",
            Self::Sun => "sun",
        }
    }

    fn of(weekday: jiff::civil::Weekday) -> Self {
        use jiff::civil::Weekday::*;
        match weekday {
            Monday => Self::Mon,
            Tuesday => Self::Tue,
            Wednesday => Self::Wed,
            Thursday => Self::Thu,
            Friday => Self::Fri,
            Saturday => Self::Sat,
            Sunday => Self::Sun,
        }
    }
}

/// An instant as the clock of `zone` reads it, RFC 3339 with its offset
/// (`2026-12-07T08:00:00+01:00`).
pub fn local_rfc3339(epoch_ms: i64, zone: &TimeZone) -> Option<String> {
    Some(
        zoned(epoch_ms, zone)?
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string(),
    )
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
/// `from` after `to` spans midnight (22:00–06:00), the night belonging to the day it
/// starts. `days` limits it to some days of the week (all when absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendWindow {
    /// Opening time, `HH:MM`.
    pub from: String,
    /// Closing time, `HH:MM` (not included).
    pub to: String,
    #[serde(default)]
    pub zone: WindowZone,
    /// The days it opens (`["mon", "tue", "wed", "thu", "fri"]`); every day when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<Vec<Day>>,
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
        if let Some(days) = &self.days {
            if days.is_empty() {
                return Err((
                    "days",
                    "must name at least one day (leave it out for every day)",
                ));
            }
            if days.iter().enumerate().any(|(i, d)| days[..i].contains(d)) {
                return Err(("days", "names a day twice"));
            }
        }
        Ok(())
    }

    fn opens_on(&self, day: jiff::civil::Date) -> bool {
        self.days
            .as_ref()
            .is_none_or(|days| days.contains(&Day::of(day.weekday())))
    }

    /// `None` when the window is open at `now` in `zone`; else when it next opens (epoch
    /// ms). A window that does not parse is treated as always open (it was checked when
    /// written).
    pub fn next_opening(&self, now: i64, zone: &TimeZone) -> Option<i64> {
        let (from, to) = (parse_hhmm(&self.from)?, parse_hhmm(&self.to)?);
        let here = zoned(now, zone)?;
        let t = here.time();
        let today = here.date();
        let open = if from < to {
            from <= t && t < to && self.opens_on(today)
        } else {
            // A night window belongs to the day it starts.
            (t >= from && self.opens_on(today))
                || (t < to && self.opens_on(today.yesterday().ok()?))
        };
        if open {
            return None;
        }
        // Closed: the first opening ahead, on a day it opens (within a week).
        let mut day = if t < from {
            today
        } else {
            today.tomorrow().ok()?
        };
        for _ in 0..8 {
            if self.opens_on(day) {
                let at = day.to_datetime(from).to_zoned(zone.clone()).ok()?;
                return Some(at.timestamp().as_millisecond());
            }
            day = day.tomorrow().ok()?;
        }
        None
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
            days: None,
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
    fn a_recipient_window_reads_the_contact_zone_else_its_country_else_the_tenant() {
        let paris = parse_zone("Europe/Paris").unwrap();
        let mut w = window("08:00", "20:00");
        let tokyo = recipient_zone(Some("Asia/Tokyo"), Some("FR"));
        assert_eq!(w.zone_for(&paris, tokyo.as_ref()), paris);
        w.zone = WindowZone::Recipient;
        let tokyo = w.zone_for(&paris, tokyo.as_ref());
        assert_eq!(tokyo.iana_name(), Some("Asia/Tokyo"));
        // No zone of its own: its country's most populous one.
        let nz = recipient_zone(None, Some("nz"));
        assert_eq!(
            w.zone_for(&paris, nz.as_ref()).iana_name(),
            Some("Pacific/Auckland")
        );
        assert_eq!(
            recipient_zone(Some("Nowhere/Land"), Some("AU"))
                .unwrap()
                .iana_name(),
            Some("Australia/Sydney")
        );
        assert_eq!(recipient_zone(None, Some("ZZ")), None);
        assert_eq!(recipient_zone(None, Some("France")), None);
        assert_eq!(w.zone_for(&paris, None), paris);
        assert_eq!(w.describe(&tokyo), "08:00–20:00 Asia/Tokyo");
    }

    #[test]
    fn every_country_zone_is_in_the_bundled_database() {
        let mut count = 0;
        for line in COUNTRY_ZONES.lines().filter(|l| !l.starts_with('#')) {
            let (cc, zone) = line.split_once('\t').unwrap();
            assert_eq!(cc.len(), 2, "{line}");
            assert!(parse_zone(zone).is_ok(), "{line}");
            count += 1;
        }
        assert!(count > 240, "{count}");
        assert_eq!(canonical_zone(" europe/paris").unwrap(), "Europe/Paris");
        assert!(canonical_zone("Europe/Atlantis").is_err());
    }

    #[test]
    fn local_times_carry_their_offset() {
        let auckland = parse_zone("Pacific/Auckland").unwrap();
        assert_eq!(
            local_rfc3339(at("2026-12-07T07:00:00Z"), &auckland).unwrap(),
            "2026-12-07T20:00:00+13:00"
        );
    }

    #[test]
    fn a_weekday_window_holds_the_weekend() {
        use Day::*;
        let paris = parse_zone("Europe/Paris").unwrap();
        let mut w = window("08:00", "20:00");
        w.days = Some(vec![Mon, Tue, Wed, Thu, Fri]);
        assert_eq!(w.check(), Ok(()));
        // Saturday 2026-12-05, 10:00 in Paris: closed until Monday 08:00.
        assert_eq!(
            w.next_opening(at("2026-12-05T09:00:00Z"), &paris),
            Some(at("2026-12-07T07:00:00Z"))
        );
        // Friday 10:00: open; Friday 21:00: Monday.
        assert_eq!(w.next_opening(at("2026-12-04T09:00:00Z"), &paris), None);
        assert_eq!(
            w.next_opening(at("2026-12-04T20:00:00Z"), &paris),
            Some(at("2026-12-07T07:00:00Z"))
        );
        assert_eq!(
            w.describe(&paris),
            "mon,tue,wed,thu,fri 08:00–20:00 Europe/Paris"
        );
        // A Friday night window runs into Saturday morning.
        let mut night = window("22:00", "06:00");
        night.days = Some(vec![Fri]);
        let utc = TimeZone::UTC;
        assert_eq!(night.next_opening(at("2026-12-05T03:00:00Z"), &utc), None);
        assert_eq!(
            night.next_opening(at("2026-12-05T23:00:00Z"), &utc),
            Some(at("2026-12-11T22:00:00Z"))
        );
        w.days = Some(vec![]);
        assert_eq!(w.check().unwrap_err().0, "days");
        w.days = Some(vec![Mon, Mon]);
        assert_eq!(w.check().unwrap_err().0, "days");
    }

    #[test]
    fn bad_windows_name_their_field() {
        assert_eq!(window("8h", "20:00").check().unwrap_err().0, "from");
        assert_eq!(window("08:00", "24:00").check().unwrap_err().0, "to");
        assert_eq!(window("08:00", "08:00").check().unwrap_err().0, "to");
    }
}
