//! SMTP TLS reporting (RFC 8460): what each delivery session's TLS came to under the
//! recipient domain's policy, in the terms of the daily aggregate report a domain asks
//! for in its `_smtp._tls` TXT record. Only the judgement lives here; the report's JSON
//! and message are mail-auth's (`ee_mail::tls_report`).

use crate::mta_sts::{Mode, Policy};

/// Destinations of one domain's reports used at most (a record may list more).
pub const MAX_DESTINATIONS: usize = 5;
/// Days a session's outcome waits for its report to go out (the record missing or the
/// destination unreachable) before it is dropped.
pub const KEEP_DAYS: i64 = 3;

/// The policy a session was held to (RFC 8460 §4.3). DANE (`tlsa`) is not done: the
/// resolver does not validate DNSSEC, so no TLSA policy is ever applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PolicyKind {
    Sts,
    NoPolicyFound,
}

impl PolicyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sts => "sts",
            Self::NoPolicyFound => "no-policy-found",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Sts, Self::NoPolicyFound]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// Why a session failed, by RFC 8460 §4.3's result types (those a sender without DANE
/// can meet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Failure {
    StarttlsNotSupported,
    CertificateHostMismatch,
    CertificateExpired,
    CertificateNotTrusted,
    ValidationFailure,
    StsPolicyFetchError,
    StsPolicyInvalid,
}

impl Failure {
    pub const ALL: [Self; 7] = [
        Self::StarttlsNotSupported,
        Self::CertificateHostMismatch,
        Self::CertificateExpired,
        Self::CertificateNotTrusted,
        Self::ValidationFailure,
        Self::StsPolicyFetchError,
        Self::StsPolicyInvalid,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::StarttlsNotSupported => "starttls-not-supported",
            Self::CertificateHostMismatch => "certificate-host-mismatch",
            Self::CertificateExpired => "certificate-expired",
            Self::CertificateNotTrusted => "certificate-not-trusted",
            Self::ValidationFailure => "validation-failure",
            Self::StsPolicyFetchError => "sts-policy-fetch-error",
            Self::StsPolicyInvalid => "sts-policy-invalid",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// A session's outcome as stored: `success` or a failure's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    Success,
    Failed(Failure),
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failed(f) => f.as_str(),
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "success" => Some(Self::Success),
            other => Failure::parse(other).map(Self::Failed),
        }
    }
}

/// The TLS a session got: `None` in clear; `Some(Ok(()))` with a certificate that
/// verified for the host; `Some(Err(why))` with one that did not.
pub type Tls = Option<Result<(), Failure>>;

/// The policy a session to `domain` falls under: an MTA-STS policy in `enforce` or
/// `testing` mode, or none (`mode: none` is no policy, RFC 8461 §5).
pub fn policy_kind(policy: Option<&Policy>) -> PolicyKind {
    match policy {
        Some(p) if p.mode != Mode::None => PolicyKind::Sts,
        _ => PolicyKind::NoPolicyFound,
    }
}

/// What a session to `mx_host` came to. Under an MTA-STS policy: a host it does not
/// name, no TLS, or a certificate that does not verify are failures (in `testing` mode
/// too: delivered, but reported). With no policy, only a session in clear is: any
/// certificate is as good as another when nothing asked for one.
pub fn judge(policy: Option<&Policy>, mx_host: &str, tls: Tls) -> Outcome {
    match policy_kind(policy) {
        PolicyKind::Sts => {
            if !policy.is_some_and(|p| p.names(mx_host)) {
                return Outcome::Failed(Failure::ValidationFailure);
            }
            match tls {
                None => Outcome::Failed(Failure::StarttlsNotSupported),
                Some(Err(why)) => Outcome::Failed(why),
                Some(Ok(())) => Outcome::Success,
            }
        }
        PolicyKind::NoPolicyFound => match tls {
            None => Outcome::Failed(Failure::StarttlsNotSupported),
            Some(_) => Outcome::Success,
        },
    }
}

/// Where a domain's reports go (the `rua` of its record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Mail(String),
    Https(String),
}

/// A session's outcome, as counted for the day's report.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Session {
    /// The recipient domain (the policy domain).
    pub domain: String,
    pub policy: PolicyKind,
    /// The policy's lines (RFC 8460 `policy-string`), empty with none.
    pub policy_lines: Vec<String>,
    pub mx_host: String,
    pub outcome: Outcome,
    pub sending_ip: String,
    pub receiving_ip: String,
}

impl Session {
    /// The session to `mx_host` at `receiving_ip` from `sending_ip` under `policy`.
    pub fn new(
        domain: &str,
        policy: Option<&Policy>,
        (mx_host, receiving_ip): (&str, &str),
        sending_ip: &str,
        outcome: Outcome,
    ) -> Self {
        let kind = policy_kind(policy);
        Self {
            domain: domain.to_ascii_lowercase(),
            policy: kind,
            policy_lines: match (kind, policy) {
                (PolicyKind::Sts, Some(p)) => p.lines(),
                _ => Vec::new(),
            },
            mx_host: mx_host.trim_end_matches('.').to_ascii_lowercase(),
            outcome,
            sending_ip: sending_ip.to_owned(),
            receiving_ip: receiving_ip.to_owned(),
        }
    }

    /// A policy that could not be had: the domain published one (its `_mta-sts`
    /// record) but it could not be fetched or read. No MX host was judged.
    pub fn policy_failure(domain: &str, sending_ip: &str, why: Failure) -> Self {
        Self {
            domain: domain.to_ascii_lowercase(),
            policy: PolicyKind::Sts,
            policy_lines: Vec::new(),
            mx_host: String::new(),
            outcome: Outcome::Failed(why),
            sending_ip: sending_ip.to_owned(),
            receiving_ip: String::new(),
        }
    }
}

/// What became of a day's report to a domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportState {
    /// Handed to every destination that took it (one at least).
    Sent,
    /// No destination took it yet: tried again at the next run.
    Failed,
    /// The domain publishes no `_smtp._tls` record: nothing sent, nothing kept.
    NoRecord,
    /// Still not sent after `KEEP_DAYS`: given up.
    Abandoned,
}

crate::names::names!(ReportState {
    Sent => "sent",
    Failed => "failed",
    NoRecord => "no_record",
    Abandoned => "abandoned",
});

/// The UTC day (`2026-12-05`) of an instant in milliseconds.
pub fn day_of(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .to_string()
}

/// A UTC day's first and last second (Unix seconds); `None` for what is not a date.
pub fn day_bounds(day: &str) -> Option<(i64, i64)> {
    let date: jiff::civil::Date = day.parse().ok()?;
    let start = date
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()?
        .timestamp()
        .as_second();
    Some((start, start + 86_399))
}

/// The report's id: unique per tenant, domain and day (RFC 8460 §4.4 `report-id`).
pub fn report_id(day: &str, domain: &str, tenant_id: &str) -> String {
    format!("{day}.{domain}.{tenant_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(mode: &str) -> Policy {
        Policy::parse(
            format!("version: STSv1\nmode: {mode}\nmx: mx.example.net\nmax_age: 86400\n")
                .as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn days_are_utc() {
        // 2026-12-05T23:59:59.999Z and the next millisecond.
        let end = 1_796_515_199_999;
        assert_eq!(day_of(end), "2026-12-05");
        assert_eq!(day_of(end + 1), "2026-12-06");
        assert_eq!(
            day_bounds("2026-12-05"),
            Some((1_796_428_800, 1_796_515_199))
        );
        assert_eq!(day_bounds("yesterday"), None);
    }

    #[test]
    fn names_round_trip() {
        for f in Failure::ALL {
            assert_eq!(Failure::parse(f.as_str()), Some(f));
            assert_eq!(Outcome::parse(f.as_str()), Some(Outcome::Failed(f)));
        }
        assert_eq!(Outcome::parse("success"), Some(Outcome::Success));
        assert_eq!(Outcome::parse("tlsa-invalid"), None);
        for k in [PolicyKind::Sts, PolicyKind::NoPolicyFound] {
            assert_eq!(PolicyKind::parse(k.as_str()), Some(k));
        }
    }

    #[test]
    fn under_a_policy_every_shortfall_is_a_failure() {
        for mode in ["enforce", "testing"] {
            let p = policy(mode);
            let p = Some(&p);
            assert_eq!(
                judge(p, "mx.example.net", Some(Ok(()))),
                Outcome::Success,
                "{mode}"
            );
            assert_eq!(
                judge(p, "MX.example.net.", None),
                Outcome::Failed(Failure::StarttlsNotSupported)
            );
            assert_eq!(
                judge(p, "mx.example.net", Some(Err(Failure::CertificateExpired))),
                Outcome::Failed(Failure::CertificateExpired)
            );
            assert_eq!(
                judge(p, "mx.other.net", Some(Ok(()))),
                Outcome::Failed(Failure::ValidationFailure)
            );
        }
    }

    #[test]
    fn without_a_policy_only_clear_text_fails() {
        let none = policy("none");
        for p in [None, Some(&none)] {
            assert_eq!(policy_kind(p), PolicyKind::NoPolicyFound);
            assert_eq!(
                judge(p, "anything", Some(Err(Failure::CertificateNotTrusted))),
                Outcome::Success
            );
            assert_eq!(
                judge(p, "anything", None),
                Outcome::Failed(Failure::StarttlsNotSupported)
            );
        }
    }

    #[test]
    fn a_session_carries_the_policy_it_was_held_to() {
        let p = policy("testing");
        let s = Session::new(
            "Example.NET",
            Some(&p),
            ("mx.example.net.", "192.0.2.1"),
            "198.51.100.7",
            Outcome::Success,
        );
        assert_eq!(s.domain, "example.net");
        assert_eq!(s.mx_host, "mx.example.net");
        assert_eq!(s.policy, PolicyKind::Sts);
        assert_eq!(
            s.policy_lines,
            [
                "version: STSv1",
                "mode: testing",
                "mx: mx.example.net",
                "max_age: 86400"
            ]
        );
        let none = Session::new("a.test", None, ("mx", "::1"), "", Outcome::Success);
        assert!(none.policy_lines.is_empty());
    }
}
