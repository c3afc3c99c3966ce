//! When scheduled jobs run: every N minutes (aligned to the epoch), daily at a UTC time,
//! or monthly on a day at a UTC time. Each run has a *slot* — the instant it was due —
//! which names it, so several nodes enqueueing the same slot make one run.

use time::{Date, Month, OffsetDateTime, Time};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Every {
    /// Slots at multiples of the period since the epoch.
    Interval {
        period_ms: i64,
    },
    DailyAt {
        hour: u8,
        minute: u8,
    },
    /// `day` 1 to 28, so that every month has it.
    MonthlyAt {
        day: u8,
        hour: u8,
        minute: u8,
    },
}

impl Every {
    pub const fn minutes(n: i64) -> Self {
        Every::Interval {
            period_ms: n * 60_000,
        }
    }

    pub const fn hours(n: i64) -> Self {
        Every::Interval {
            period_ms: n * 3_600_000,
        }
    }

    /// Roughly how far apart runs are (months count 28 days).
    pub fn period_ms(self) -> i64 {
        match self {
            Every::Interval { period_ms } => period_ms,
            Every::DailyAt { .. } => 86_400_000,
            Every::MonthlyAt { .. } => 28 * 86_400_000,
        }
    }

    /// How late a slot may still be run, e.g. after a restart: one period, at most a day.
    pub fn grace_ms(self) -> i64 {
        self.period_ms().min(86_400_000)
    }

    pub fn describe(self) -> String {
        match self {
            Every::Interval { period_ms } if period_ms % 3_600_000 == 0 => {
                format!("every {} h", period_ms / 3_600_000)
            }
            Every::Interval { period_ms } => format!("every {} min", period_ms / 60_000),
            Every::DailyAt { hour, minute } => format!("daily at {hour:02}:{minute:02} UTC"),
            Every::MonthlyAt { day, hour, minute } => {
                format!("monthly on day {day} at {hour:02}:{minute:02} UTC")
            }
        }
    }

    /// The latest slot at or before `now_ms`.
    pub fn latest_slot(self, now_ms: i64) -> i64 {
        match self {
            Every::Interval { period_ms } => now_ms.div_euclid(period_ms) * period_ms,
            Every::DailyAt { hour, minute } => {
                let today = at(date(now_ms), hour, minute);
                if today <= now_ms {
                    today
                } else {
                    today - 86_400_000
                }
            }
            Every::MonthlyAt { day, hour, minute } => {
                let d = date(now_ms);
                let this_month = month_slot(d.year(), d.month(), day, hour, minute);
                if this_month <= now_ms {
                    this_month
                } else {
                    let (y, m) = if d.month() == Month::January {
                        (d.year() - 1, Month::December)
                    } else {
                        (d.year(), d.month().previous())
                    };
                    month_slot(y, m, day, hour, minute)
                }
            }
        }
    }

    /// The first slot strictly after `now_ms`.
    pub fn next_slot(self, now_ms: i64) -> i64 {
        match self {
            Every::Interval { period_ms } => self.latest_slot(now_ms) + period_ms,
            Every::DailyAt { .. } => self.latest_slot(now_ms) + 86_400_000,
            Every::MonthlyAt { day, hour, minute } => {
                let d = date(self.latest_slot(now_ms));
                let (y, m) = if d.month() == Month::December {
                    (d.year() + 1, Month::January)
                } else {
                    (d.year(), d.month().next())
                };
                month_slot(y, m, day, hour, minute)
            }
        }
    }
}

fn date(ms: i64) -> Date {
    OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .map(|t| t.date())
        .unwrap_or(Date::MIN)
}

fn at(date: Date, hour: u8, minute: u8) -> i64 {
    let time = Time::from_hms(hour.min(23), minute.min(59), 0).unwrap_or(Time::MIDNIGHT);
    date.with_time(time).assume_utc().unix_timestamp() * 1000
}

fn month_slot(year: i32, month: Month, day: u8, hour: u8, minute: u8) -> i64 {
    let date = Date::from_calendar_date(year, month, day.clamp(1, 28)).unwrap_or(Date::MIN);
    at(date, hour, minute)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timefmt::{parse_rfc3339, to_rfc3339};

    fn t(s: &str) -> i64 {
        parse_rfc3339(s).unwrap()
    }

    #[test]
    fn intervals_align_to_the_epoch() {
        let every = Every::minutes(5);
        assert_eq!(
            to_rfc3339(every.latest_slot(t("2026-11-21T10:12:59Z"))),
            "2026-11-21T10:10:00Z"
        );
        assert_eq!(
            to_rfc3339(every.next_slot(t("2026-11-21T10:12:59Z"))),
            "2026-11-21T10:15:00Z"
        );
        assert_eq!(
            to_rfc3339(Every::hours(4).latest_slot(t("2026-11-21T10:12:59Z"))),
            "2026-11-21T08:00:00Z"
        );
        assert_eq!(
            every.latest_slot(t("2026-11-21T10:10:00Z")),
            t("2026-11-21T10:10:00Z")
        );
    }

    #[test]
    fn daily_slots() {
        let every = Every::DailyAt { hour: 6, minute: 0 };
        assert_eq!(
            to_rfc3339(every.latest_slot(t("2026-11-21T05:59:59Z"))),
            "2026-11-20T06:00:00Z"
        );
        assert_eq!(
            to_rfc3339(every.latest_slot(t("2026-11-21T06:00:00Z"))),
            "2026-11-21T06:00:00Z"
        );
        assert_eq!(
            to_rfc3339(every.next_slot(t("2026-11-21T06:00:00Z"))),
            "2026-11-22T06:00:00Z"
        );
        assert_eq!(every.describe(), "daily at 06:00 UTC");
    }

    #[test]
    fn monthly_slots_cross_years() {
        let every = Every::MonthlyAt {
            day: 1,
            hour: 3,
            minute: 0,
        };
        assert_eq!(
            to_rfc3339(every.latest_slot(t("2026-11-21T10:00:00Z"))),
            "2026-11-01T03:00:00Z"
        );
        assert_eq!(
            to_rfc3339(every.next_slot(t("2026-11-21T10:00:00Z"))),
            "2026-12-01T03:00:00Z"
        );
        assert_eq!(
            to_rfc3339(every.latest_slot(t("2027-01-01T02:59:00Z"))),
            "2026-12-01T03:00:00Z"
        );
        assert_eq!(
            to_rfc3339(every.next_slot(t("2026-12-15T00:00:00Z"))),
            "2027-01-01T03:00:00Z"
        );
        assert_eq!(every.grace_ms(), 86_400_000);
    }
}
