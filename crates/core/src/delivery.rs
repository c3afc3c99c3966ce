//! Delivery rules: message states, what an SMTP reply means, the retry schedule, the
//! grouping of destinations by mail provider and the choice of a source IP.

use serde::{Deserialize, Serialize};

/// Why a message is in the queue: for a campaign (or a sequence's step), sent alone
/// through the API, or a test send of a campaign or template.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    Campaign,
    #[default]
    Transactional,
    Test,
}

crate::names::names!(MessageKind {
    Campaign => "campaign",
    Transactional => "transactional",
    Test => "test",
});

/// The state of one recipient's message in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageState {
    Queued,
    Sending,
    Sent,
    Deferred,
    Bounced,
    Failed,
    Suppressed,
    Expired,
}

impl MessageState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Deferred => "deferred",
            Self::Bounced => "bounced",
            Self::Failed => "failed",
            Self::Suppressed => "suppressed",
            Self::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Queued,
            Self::Sending,
            Self::Sent,
            Self::Deferred,
            Self::Bounced,
            Self::Failed,
            Self::Suppressed,
            Self::Expired,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }

    /// Whether nothing more will happen to the message.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Queued | Self::Sending | Self::Deferred)
    }
}

impl TryFrom<String> for MessageState {
    type Error = crate::names::UnknownName;

    fn try_from(s: String) -> Result<Self, crate::names::UnknownName> {
        Self::parse(&s).ok_or(crate::names::UnknownName {
            of: "message state",
            name: s,
        })
    }
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Try again later (4xx, time-outs, dropped connections).
    Deferred,
    /// Refused for good (5xx).
    Bounced,
}

/// The meaning of an SMTP reply code.
pub fn classify(code: u16) -> Outcome {
    match code {
        200..=399 => Outcome::Sent,
        500..=599 => Outcome::Bounced,
        _ => Outcome::Deferred,
    }
}

/// Retry delays after each failed attempt, and the age after which a message expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Delay after the 1st, 2nd … failure; the last repeats. The field's practice: a first
    /// retry within minutes (most 4xx are greylisting or a brief overload), growing to
    /// hours: 5 m, 15 m, 1 h, 4 h, 8 h, 12 h, 24 h (seed 002's 4 h, 8 h, 12 h, 24 h after
    /// the first three).
    pub delays_secs: Vec<i64>,
    pub max_age_secs: i64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            delays_secs: vec![300, 900, 3600, 4 * 3600, 8 * 3600, 12 * 3600, 24 * 3600],
            max_age_secs: 7 * 86_400,
        }
    }
}

impl RetryPolicy {
    /// When to try again after `attempts` failed attempts of a message queued at
    /// `queued_at`; `None` when the next try would be past its max age (expired).
    pub fn next_attempt(&self, attempts: u32, queued_at_ms: i64, now_ms: i64) -> Option<i64> {
        let index = (attempts.max(1) as usize - 1).min(self.delays_secs.len().saturating_sub(1));
        let delay = self.delays_secs.get(index).copied().unwrap_or(3600);
        let at = now_ms + delay * 1000;
        (at - queued_at_ms <= self.max_age_secs * 1000).then_some(at)
    }

    /// Parses `4h,8h,12h,24h` (units s, m, h, d).
    pub fn parse_delays(text: &str) -> Result<Vec<i64>, String> {
        text.split(',')
            .map(|part| {
                let part = part.trim();
                let (number, unit) = part.split_at(part.len().saturating_sub(1));
                let factor = match unit {
                    "s" => 1,
                    "m" => 60,
                    "h" => 3600,
                    "d" => 86_400,
                    _ => return Err(format!("`{part}`: expected a number and s, m, h or d")),
                };
                number
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .map(|n| n * factor)
                    .ok_or_else(|| format!("`{part}`: expected a positive number"))
            })
            .collect()
    }
}

/// A mail provider as the shaping data names it (`gmail`, `orange`, …, `crate::shaping`),
/// recognised by its MX hosts: every domain hosted there shares its limits and its shaping
/// state. `other` for the rest; `relay` for a relay's own replies.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Provider(std::sync::Arc<str>);

impl Provider {
    pub const OTHER: &'static str = "other";
    pub const RELAY: &'static str = "relay";

    pub fn named(name: &str) -> Self {
        Self(name.into())
    }

    pub fn other() -> Self {
        Self::named(Self::OTHER)
    }

    pub fn relay() -> Self {
        Self::named(Self::RELAY)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// By the recipient's domain, for reports: the providers' own consumer domains (a
    /// company's domain hosted by one of them is `other` here: only its MX tells).
    pub fn of_address_domain(domain: &str) -> Self {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let first = domain.split('.').next().unwrap_or("");
        let name = match (first, domain.as_str()) {
            ("gmail" | "googlemail", _) => "gmail",
            ("outlook" | "hotmail" | "live" | "msn" | "windowslive", _) => "microsoft",
            ("yahoo" | "ymail" | "rocketmail" | "aol", _) => "yahoo",
            (_, "icloud.com" | "me.com" | "mac.com") => "apple",
            (_, "comcast.net") => "comcast",
            (_, "orange.fr" | "wanadoo.fr") => "orange",
            (_, "free.fr") => "free",
            (_, "sfr.fr" | "neuf.fr") => "sfr",
            (_, "laposte.net") => "laposte",
            _ => Self::OTHER,
        };
        Self::named(name)
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Hourly rate and concurrent connections allowed towards one provider from one IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestinationLimit {
    pub per_hour: u32,
    pub connections: u32,
}

/// Per-provider limits; defaults are conservative for new senders. A provider not named
/// has `other`'s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestinationLimits {
    pub named: std::collections::BTreeMap<String, DestinationLimit>,
    pub other: DestinationLimit,
}

impl Default for DestinationLimits {
    fn default() -> Self {
        let big = DestinationLimit {
            per_hour: 3600,
            connections: 5,
        };
        let mut named: std::collections::BTreeMap<String, DestinationLimit> =
            ["gmail", "microsoft", "yahoo"]
                .into_iter()
                .map(|n| (n.to_owned(), big))
                .collect();
        // A relay (PowerMTA, a smarthost) takes many connections; its own replies slow
        // them down (shaping). Its hourly figure is unused: the recipients' providers
        // count the hour.
        named.insert(
            Provider::RELAY.to_owned(),
            DestinationLimit {
                per_hour: 1_000_000,
                connections: 50,
            },
        );
        Self {
            named,
            other: DestinationLimit {
                per_hour: 36_000,
                connections: 20,
            },
        }
    }
}

impl DestinationLimits {
    /// Overrides the defaults from `gmail=3600/5,other=36000/20` (per hour / connections).
    /// The names are checked against the shaping data's providers by the caller.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut limits = Self::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}`: expected provider=per_hour/connections"))?;
            let (rate, connections) = value
                .split_once('/')
                .ok_or_else(|| format!("`{part}`: expected provider=per_hour/connections"))?;
            let number = |s: &str| {
                s.trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("`{part}`: {s} is not a positive number"))
            };
            let limit = DestinationLimit {
                per_hour: number(rate)?,
                connections: number(connections)?,
            };
            match name.trim() {
                Provider::OTHER => limits.other = limit,
                name if crate::shaping::valid_provider_name(name) => {
                    limits.named.insert(name.to_owned(), limit);
                }
                name => return Err(format!("`{name}` is not a provider name")),
            }
        }
        Ok(limits)
    }

    pub fn of(&self, provider: &Provider) -> DestinationLimit {
        self.of_name(provider.as_str())
    }

    pub fn of_name(&self, name: &str) -> DestinationLimit {
        self.named.get(name).copied().unwrap_or(self.other)
    }
}

/// How a tenant delivers (tenant settings, key `delivery`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TenantDelivery {
    /// `direct` (MX lookup, from the tenant's IPs), `relay` (a smarthost, e.g. PowerMTA) or
    /// `mailwizz` (its transactional-emails API).
    pub mode: Mode,
    /// The relay's name or id when `mode` is `relay`: the first one.
    pub relay: Option<String>,
    /// More relays (names or ids) after `relay`, or in its place: tried in turn when one
    /// refuses or is unreachable (`relay_order`).
    pub relays: Vec<String>,
    /// `listed` (the first that takes the message) or `weighted` (the first drawn by the
    /// relays' weights, then the others in order).
    pub relay_order: crate::relay_choice::RelayOrder,
    /// The MailWizz instance's name or id when `mode` is `mailwizz` (the tenant's primary
    /// instance when absent).
    pub mailwizz: Option<String>,
    pub track_opens: bool,
    pub track_clicks: bool,
    /// At most `max` campaign messages per address in `hours` (transactional ones exempt).
    pub frequency_cap: Option<FrequencyCap>,
    /// The envelope sender; the From address when absent.
    pub return_path: Option<String>,
    /// A domain whose mail comes to our bounce listener: each message then gets its own
    /// return path there (`b-<message id>-<tag>@<bounce_domain>`), so every bounce and
    /// report names its message. Takes the place of `return_path`.
    pub bounce_domain: Option<String>,
    /// An address for `List-Unsubscribe: <mailto:…>` beside the one-click URL.
    pub unsubscribe_mailto: Option<String>,
    /// The sender of a message that names none (nor its template).
    pub default_from_email: Option<String>,
    pub default_from_name: Option<String>,
    pub default_reply_to: Option<String>,
    /// Lets a From address outside the tenant's signing domains go out unsigned (DMARC
    /// at the receiver will fail it); off by default.
    pub allow_unsigned_senders: bool,
    /// When a campaign pauses itself (seed 003 §F: over 5 % bounces), with an alert.
    pub campaign_auto_pause: crate::campaign::PauseThresholds,
    /// The tenant's time zone (IANA, e.g. `Europe/Paris`): schedules written without an
    /// offset and sending windows are read in it. UTC when absent.
    pub time_zone: Option<String>,
    /// When soft bounces suppress an address: `limit` in `days`, counted since its last
    /// delivery.
    pub soft_bounces: SoftBounces,
}

/// Soft bounces suppress an address after `limit` of them within `days` (the count starts
/// again after a delivery).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SoftBounces {
    pub limit: u32,
    pub days: u32,
}

impl Default for SoftBounces {
    fn default() -> Self {
        Self { limit: 3, days: 7 }
    }
}

impl SoftBounces {
    pub fn check(&self) -> Result<(), &'static str> {
        if !(1..=100).contains(&self.limit) || !(1..=365).contains(&self.days) {
            return Err("limit must be 1 to 100 and days 1 to 365");
        }
        Ok(())
    }

    /// From when soft bounces count, given the address's last delivery.
    pub fn counted_from(&self, now_ms: i64, last_delivery: Option<i64>) -> i64 {
        let window = now_ms - i64::from(self.days) * 86_400_000;
        last_delivery.map_or(window, |d| window.max(d + 1))
    }

    /// Whether this many soft bounces suppress the address.
    pub fn suppresses(&self, count: i64) -> bool {
        count >= i64::from(self.limit)
    }
}

impl Default for TenantDelivery {
    fn default() -> Self {
        Self {
            mode: Mode::Direct,
            relay: None,
            relays: Vec::new(),
            relay_order: Default::default(),
            mailwizz: None,
            track_opens: true,
            track_clicks: true,
            frequency_cap: None,
            return_path: None,
            bounce_domain: None,
            unsubscribe_mailto: None,
            default_from_email: None,
            default_from_name: None,
            default_reply_to: None,
            allow_unsigned_senders: false,
            campaign_auto_pause: crate::campaign::PauseThresholds::default(),
            time_zone: None,
            soft_bounces: SoftBounces::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Direct,
    Relay,
    /// Through a MailWizz instance's transactional-emails API (seed 000 §8.3, option A):
    /// MailWizz's delivery servers send; our tracking and headers stay in the body.
    Mailwizz,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FrequencyCap {
    pub max: u32,
    pub hours: u32,
}

/// The PowerMTA virtual MTA of an IP: `vmta-` and the address with `.`/`:` as `-`.
pub fn virtual_mta_name(ip_address: &str) -> String {
    format!("vmta-{}", ip_address.replace(['.', ':'], "-"))
}

/// A sending IP as the choice sees it: its remaining quota today (`None`: unlimited).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpCandidate<'a> {
    pub id: &'a str,
    pub remaining: Option<i64>,
}

/// Picks the IP with the most quota left, so that traffic spreads by remaining quota
/// (unlimited IPs first, then ties broken by `spin` to rotate among equals). `None` when
/// every IP has used its quota.
pub fn pick_ip<'a>(candidates: &[IpCandidate<'a>], spin: usize) -> Option<&'a str> {
    let open: Vec<&IpCandidate<'a>> = candidates
        .iter()
        .filter(|c| c.remaining.is_none_or(|r| r > 0))
        .collect();
    let best = open.iter().map(|c| c.remaining.unwrap_or(i64::MAX)).max()?;
    let tied: Vec<&&IpCandidate<'a>> = open
        .iter()
        .filter(|c| c.remaining.unwrap_or(i64::MAX) == best)
        .collect();
    Some(tied[spin % tied.len()].id)
}

/// Headers the engine writes itself: a custom header may not set them (a second From
/// would forge the sender; X-Virtual-MTA would pick another tenant's IP at PowerMTA).
const ENGINE_HEADERS: &[&str] = &[
    "from",
    "sender",
    "to",
    "cc",
    "bcc",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "dkim-signature",
    "return-path",
    "received",
    "x-virtual-mta",
    "x-campaign-id",
    "x-job",
];

/// Header-name prefixes the engine owns.
const ENGINE_PREFIXES: &[&str] = &["content-", "list-unsubscribe", "list-"];

/// Checks a custom header a caller wants on a message: a valid name (letters, digits,
/// `-`; at most 64), a value on one line (at most 998 bytes), not one the engine owns.
pub fn check_custom_header(name: &str, value: &str) -> Result<(), String> {
    let valid_name = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !valid_name {
        return Err(format!(
            "`{name}` is not a valid header name (letters, digits and `-`, at most 64)"
        ));
    }
    if value.contains(['\r', '\n', '\0']) || value.len() > 998 {
        return Err(format!(
            "the value of `{name}` must be one line of at most 998 bytes"
        ));
    }
    let lower = name.to_ascii_lowercase();
    if ENGINE_HEADERS.contains(&lower.as_str())
        || ENGINE_PREFIXES.iter().any(|p| lower.starts_with(p))
    {
        return Err(format!(
            "`{name}` is written by the engine and cannot be set (use the message's own fields)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    #[test]
    fn providers_by_recipient_domain() {
        for (domain, provider) in [
            ("gmail.com", "gmail"),
            ("hotmail.fr", "microsoft"),
            ("yahoo.co.uk", "yahoo"),
            ("wanadoo.fr", "orange"),
            ("laposte.net", "laposte"),
            ("example.com", "other"),
        ] {
            assert_eq!(Provider::of_address_domain(domain).as_str(), provider);
        }
    }

    #[test]
    fn soft_bounces_count_from_the_window_or_the_last_delivery() {
        let rule = SoftBounces { limit: 3, days: 7 };
        let now = 100 * 86_400_000;
        assert_eq!(rule.counted_from(now, None), 93 * 86_400_000);
        assert_eq!(
            rule.counted_from(now, Some(90 * 86_400_000)),
            93 * 86_400_000
        );
        assert_eq!(
            rule.counted_from(now, Some(95 * 86_400_000)),
            95 * 86_400_000 + 1
        );
        assert!(!rule.suppresses(2) && rule.suppresses(3));
        assert!(SoftBounces { limit: 0, days: 7 }.check().is_err());
        assert!(
            SoftBounces {
                limit: 3,
                days: 400
            }
            .check()
            .is_err()
        );
        assert!(rule.check().is_ok());
    }
    use super::*;

    #[test]
    fn custom_headers_cannot_take_the_engines() {
        for name in [
            "From",
            "FROM",
            "sender",
            "To",
            "Cc",
            "Bcc",
            "Reply-To",
            "Subject",
            "Date",
            "Message-ID",
            "MIME-Version",
            "Content-Type",
            "Content-Transfer-Encoding",
            "DKIM-Signature",
            "List-Unsubscribe",
            "List-Unsubscribe-Post",
            "Return-Path",
            "Received",
            "X-Virtual-MTA",
            "X-Campaign-ID",
        ] {
            let e = check_custom_header(name, "x").unwrap_err();
            assert!(e.contains(name), "{e}");
        }
        assert!(check_custom_header("X-Mailer-Ref", "abc").is_ok());
        assert!(check_custom_header("Precedence", "bulk").is_ok());
        assert!(check_custom_header("X Bad", "v").is_err());
        assert!(check_custom_header("X-Ok", "a\r\nBcc: x@y").is_err());
        assert!(check_custom_header("X-Ok", &"a".repeat(999)).is_err());
    }

    #[test]
    fn virtual_mtas_and_settings() {
        assert_eq!(virtual_mta_name("46.62.168.55"), "vmta-46-62-168-55");
        assert_eq!(virtual_mta_name("2001:db8::1"), "vmta-2001-db8--1");
        let parsed: TenantDelivery =
            serde_json::from_str(r#"{"mode":"relay","relay":"pmta","track_opens":false}"#).unwrap();
        assert_eq!(parsed.mode, Mode::Relay);
        assert!(!parsed.track_opens && parsed.track_clicks);
        assert!(serde_json::from_str::<TenantDelivery>(r#"{"mod":"relay"}"#).is_err());
    }

    #[test]
    fn replies() {
        assert_eq!(classify(250), Outcome::Sent);
        assert_eq!(classify(421), Outcome::Deferred);
        assert_eq!(classify(451), Outcome::Deferred);
        assert_eq!(classify(550), Outcome::Bounced);
        assert_eq!(classify(0), Outcome::Deferred);
    }

    #[test]
    fn retry_schedule_and_expiry() {
        let p = RetryPolicy::default();
        let (m, h) = (60_000, 3_600_000);
        assert_eq!(p.next_attempt(1, 0, 0), Some(5 * m));
        assert_eq!(p.next_attempt(2, 0, 5 * m), Some(20 * m));
        assert_eq!(p.next_attempt(3, 0, 20 * m), Some(20 * m + h));
        assert_eq!(p.next_attempt(4, 0, 2 * h), Some(6 * h));
        assert_eq!(p.next_attempt(7, 0, 24 * h), Some(48 * h));
        assert_eq!(p.next_attempt(9, 0, 48 * h), Some(72 * h));
        // Past seven days: expired.
        assert_eq!(p.next_attempt(9, 0, 150 * h), None);
        assert_eq!(
            RetryPolicy::parse_delays("30s, 2m,1h,1d").unwrap(),
            vec![30, 120, 3600, 86_400]
        );
        assert!(RetryPolicy::parse_delays("4x").is_err());
        assert!(RetryPolicy::parse_delays("0h").is_err());
    }

    #[test]
    fn limits_from_text() {
        let l = DestinationLimits::parse("gmail=100/2, other=5/1").unwrap();
        assert_eq!(
            l.of_name("gmail"),
            DestinationLimit {
                per_hour: 100,
                connections: 2
            }
        );
        assert_eq!(
            l.other,
            DestinationLimit {
                per_hour: 5,
                connections: 1
            }
        );
        assert_eq!(
            l.of_name("yahoo"),
            DestinationLimits::default().of_name("yahoo")
        );
        // A provider the defaults do not name has its own limit; one never named, other's.
        let l = DestinationLimits::parse("orange=60/1").unwrap();
        assert_eq!(l.of(&Provider::named("orange")).per_hour, 60);
        assert_eq!(l.of(&Provider::named("free")), l.other);
        assert!(DestinationLimits::parse("Not A Name=1/1").is_err());
        assert!(DestinationLimits::parse("gmail=0/1").is_err());
        assert!(DestinationLimits::parse("gmail=100").is_err());
    }

    #[test]
    fn ips_by_remaining_quota() {
        let c = [
            IpCandidate {
                id: "a",
                remaining: Some(10),
            },
            IpCandidate {
                id: "b",
                remaining: Some(30),
            },
            IpCandidate {
                id: "c",
                remaining: Some(0),
            },
        ];
        assert_eq!(pick_ip(&c, 0), Some("b"));
        let tied = [
            IpCandidate {
                id: "a",
                remaining: Some(5),
            },
            IpCandidate {
                id: "b",
                remaining: Some(5),
            },
        ];
        assert_eq!(pick_ip(&tied, 0), Some("a"));
        assert_eq!(pick_ip(&tied, 1), Some("b"));
        assert_eq!(pick_ip(&c[2..], 0), None);
        let unlimited = [
            IpCandidate {
                id: "a",
                remaining: Some(5),
            },
            IpCandidate {
                id: "u",
                remaining: None,
            },
        ];
        assert_eq!(pick_ip(&unlimited, 0), Some("u"));
    }
}
