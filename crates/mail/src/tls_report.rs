//! The daily SMTP TLS report (RFC 8460 §4–5): the sessions of one day to one domain,
//! grouped by the policy they were held to, as mail-auth writes the JSON (gzip) and the
//! message that carries it.

use std::collections::BTreeMap;
use std::io::Write;

use ee_core::tls_rpt::{Outcome, PolicyKind, Session};
pub use mail_auth::report::tlsrpt::TlsReport;
use mail_auth::report::tlsrpt::{
    DateRange, FailureDetails, Policy, PolicyDetails, PolicyType, ResultType, Summary,
};

/// Failure lines one policy's part of a report lists at most (the counts stay whole).
pub const MAX_FAILURE_DETAILS: usize = 1_000;

/// Who reports, on what, over which day.
pub struct Header<'a> {
    pub organization: &'a str,
    pub contact: &'a str,
    pub report_id: &'a str,
    /// The day's first and last second (Unix seconds, UTC).
    pub start: i64,
    pub end: i64,
}

fn result_type(outcome: Outcome) -> ResultType {
    use ee_core::tls_rpt::Failure as F;
    match outcome {
        Outcome::Success => ResultType::Other,
        Outcome::Failed(f) => match f {
            F::StarttlsNotSupported => ResultType::StartTlsNotSupported,
            F::CertificateHostMismatch => ResultType::CertificateHostMismatch,
            F::CertificateExpired => ResultType::CertificateExpired,
            F::CertificateNotTrusted => ResultType::CertificateNotTrusted,
            F::ValidationFailure => ResultType::ValidationFailure,
            F::StsPolicyFetchError => ResultType::StsPolicyFetchError,
            F::StsPolicyInvalid => ResultType::StsPolicyInvalid,
        },
    }
}

/// The report of `sessions` (each with how many times it happened), all to one domain.
pub fn report(header: &Header<'_>, sessions: &[(Session, u64)]) -> TlsReport {
    type Group = (u64, u64, BTreeMap<(Outcome, String, String, String), u64>);
    let mut groups: BTreeMap<(PolicyKind, Vec<String>), (String, Group)> = BTreeMap::new();
    for (s, n) in sessions {
        let (_, (ok, failed, details)) = groups
            .entry((s.policy, s.policy_lines.clone()))
            .or_insert_with(|| (s.domain.clone(), (0, 0, BTreeMap::new())));
        match s.outcome {
            Outcome::Success => *ok += n,
            Outcome::Failed(_) => {
                *failed += n;
                *details
                    .entry((
                        s.outcome,
                        s.mx_host.clone(),
                        s.sending_ip.clone(),
                        s.receiving_ip.clone(),
                    ))
                    .or_default() += n;
            }
        }
    }
    let count = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    let policies = groups
        .into_iter()
        .map(|((kind, lines), (domain, (ok, failed, details)))| Policy {
            policy: PolicyDetails {
                policy_type: match kind {
                    PolicyKind::Sts => PolicyType::Sts,
                    PolicyKind::NoPolicyFound => PolicyType::NoPolicyFound,
                },
                mx_host: lines
                    .iter()
                    .filter_map(|l| l.strip_prefix("mx: "))
                    .map(str::to_owned)
                    .collect(),
                policy_string: lines,
                policy_domain: domain,
            },
            summary: Summary {
                total_success: count(ok),
                total_failure: count(failed),
            },
            failure_details: details
                .into_iter()
                .take(MAX_FAILURE_DETAILS)
                .map(|((outcome, mx, sending, receiving), n)| FailureDetails {
                    result_type: result_type(outcome),
                    sending_mta_ip: sending.parse().ok(),
                    receiving_mx_hostname: Some(mx).filter(|m| !m.is_empty()),
                    receiving_mx_helo: None,
                    receiving_ip: receiving.parse().ok(),
                    failed_session_count: count(n),
                    additional_information: None,
                    failure_reason_code: None,
                })
                .collect(),
        })
        .collect();
    TlsReport {
        organization_name: Some(header.organization.to_owned()),
        date_range: DateRange::from_timestamps(header.start, header.end),
        contact_info: Some(header.contact.to_owned()),
        report_id: header.report_id.to_owned(),
        policies,
    }
}

/// The report's JSON, gzip-compressed (`application/tlsrpt+gzip`, RFC 8460 §5.3).
pub fn gzip(report: &TlsReport) -> std::io::Result<Vec<u8>> {
    let json = report.to_json();
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(json.as_bytes())?;
    e.finish()
}

/// The message carrying the report to `to` (RFC 8460 §5.3), not yet signed.
pub fn message(
    report: &TlsReport,
    (domain, submitter): (&str, &str),
    from: &str,
    to: &[String],
) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    report.write_rfc5322_from_bytes(
        domain,
        submitter,
        from,
        to.iter().map(String::as_str),
        &gzip(report)?,
        &mut out,
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ee_core::tls_rpt::Failure;

    fn policy() -> ee_core::mta_sts::Policy {
        ee_core::mta_sts::Policy::parse(
            b"version: STSv1\nmode: testing\nmx: mx.example.net\nmax_age: 600\n",
        )
        .unwrap()
    }

    #[test]
    fn the_message_carries_the_counts_per_policy() {
        let p = policy();
        let at = ("mx.example.net", "192.0.2.10");
        let sessions = vec![
            (
                Session::new(
                    "example.net",
                    Some(&p),
                    at,
                    "198.51.100.1",
                    Outcome::Success,
                ),
                7,
            ),
            (
                Session::new(
                    "example.net",
                    Some(&p),
                    at,
                    "198.51.100.1",
                    Outcome::Failed(Failure::StarttlsNotSupported),
                ),
                2,
            ),
            (
                Session::new(
                    "example.net",
                    Some(&p),
                    at,
                    "198.51.100.2",
                    Outcome::Failed(Failure::StarttlsNotSupported),
                ),
                1,
            ),
        ];
        let header = Header {
            organization: "Brand",
            contact: "postmaster@brand.test",
            report_id: "2026-12-05.example.net.t1",
            start: 1_796_515_200,
            end: 1_796_601_599,
        };
        let r = report(&header, &sessions);
        let raw = message(
            &r,
            ("example.net", "brand.test"),
            "tls-reports@brand.test",
            &["tlsrpt@example.net".to_owned()],
        )
        .unwrap();
        let text = String::from_utf8_lossy(&raw);
        assert!(text.contains("TLS-Report-Domain: example.net"), "{text}");
        assert!(text.contains("application/tlsrpt+gzip"), "{text}");
        let back = TlsReport::parse_rfc5322(&raw, 1 << 20).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.policies.len(), 1);
        let policy = &back.policies[0];
        assert_eq!(policy.policy.policy_type, PolicyType::Sts);
        assert_eq!(policy.policy.mx_host, ["mx.example.net"]);
        assert_eq!(policy.summary.total_success, 7);
        assert_eq!(policy.summary.total_failure, 3);
        let counts: Vec<u32> = policy
            .failure_details
            .iter()
            .map(|d| d.failed_session_count)
            .collect();
        assert_eq!(counts, [2, 1]);
        assert!(
            policy
                .failure_details
                .iter()
                .all(|d| d.result_type == ResultType::StartTlsNotSupported)
        );
    }
}
