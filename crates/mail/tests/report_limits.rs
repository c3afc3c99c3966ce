//! The report reader keeps to its bounds whatever arrives: nesting, parts, recipients and
//! size over a bound are refused with the bound named, quickly; any bytes at all, and any
//! real bounce cut or garbled anywhere, are read or refused without a panic.
#![allow(clippy::unwrap_used)]

use ee_mail::report::{LIMITS, Limits, ReportError, parse, parse_with};
use proptest::prelude::*;

const FLUFL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/bounces-flufl");

/// A DSN for `recipients` addresses, wrapped `depth` times in forwarded reports.
fn nested_dsn(depth: usize, recipients: usize) -> Vec<u8> {
    let mut status = String::from("Reporting-MTA: dns; mx.example.org\r\n");
    for i in 0..recipients {
        status.push_str(&format!(
            "\r\nFinal-Recipient: rfc822; user{i}@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n\
             Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n"
        ));
    }
    let mut message = format!(
        "From: MAILER-DAEMON@example.org\r\nTo: b-x@bounces.example\r\nSubject: failure\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b0\"\r\n\r\n\
         --b0\r\nContent-Type: text/plain\r\n\r\nFailed.\r\n\r\n\
         --b0\r\nContent-Type: message/delivery-status\r\n\r\n{status}\r\n--b0--\r\n"
    );
    for level in 1..=depth {
        message = format!(
            "From: list@example.net\r\nTo: b-x@bounces.example\r\nSubject: fwd {level}\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/report; report-type=delivery-status; boundary=\"b{level}\"\r\n\r\n\
             --b{level}\r\nContent-Type: text/plain\r\n\r\nForwarded.\r\n\r\n\
             --b{level}\r\nContent-Type: message/rfc822\r\n\r\n{message}\r\n--b{level}--\r\n"
        );
    }
    message.into_bytes()
}

#[test]
fn two_thousand_levels_of_nesting_are_refused_at_once() {
    let raw = nested_dsn(2_000, 1);
    assert!(raw.len() > 250_000, "{}", raw.len());
    let started = std::time::Instant::now();
    assert_eq!(
        parse(&raw),
        Err(ReportError::TooManyParts(LIMITS.max_parts))
    );
    // Not a timing assertion: a sanity print for whoever reads the log.
    println!("refused in {:?}", started.elapsed());
}

#[test]
fn nesting_under_the_part_bound_but_past_the_depth_is_refused() {
    assert_eq!(
        parse(&nested_dsn(LIMITS.max_depth + 1, 1)),
        Err(ReportError::TooDeep(LIMITS.max_depth))
    );
    let report = parse(&nested_dsn(LIMITS.max_depth, 1)).unwrap();
    assert_eq!(report.recipients.len(), 1);
    assert_eq!(report.recipients[0].address, "user0@example.org");
}

#[test]
fn recipients_past_the_bound_are_refused() {
    assert_eq!(
        parse(&nested_dsn(0, LIMITS.max_recipients))
            .unwrap()
            .recipients
            .len(),
        100
    );
    assert_eq!(
        parse(&nested_dsn(0, LIMITS.max_recipients + 1)),
        Err(ReportError::TooManyRecipients(LIMITS.max_recipients))
    );
    // An abuse report naming ten thousand recipients.
    let mut arf = String::from(
        "From: fbl@isp.example\r\nTo: b-x@bounces.example\r\nSubject: report\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=feedback-report; boundary=\"f\"\r\n\r\n\
         --f\r\nContent-Type: text/plain\r\n\r\nAbuse.\r\n\r\n--f\r\nContent-Type: message/feedback-report\r\n\r\n\
         Feedback-Type: abuse\r\nUser-Agent: x/1\r\nVersion: 1\r\nSource-IP: 192.0.2.1\r\n",
    );
    for i in 0..10_000 {
        arf.push_str(&format!("Original-Rcpt-To: paul{i}@example.org\r\n"));
    }
    arf.push_str("\r\n--f--\r\n");
    assert_eq!(
        parse(arf.as_bytes()),
        Err(ReportError::TooManyRecipients(LIMITS.max_recipients))
    );
}

#[test]
fn a_message_over_the_size_bound_is_refused_before_it_is_read() {
    let small = Limits {
        max_bytes: 1_000,
        ..LIMITS
    };
    assert_eq!(
        parse_with(&nested_dsn(0, 20), &small),
        Err(ReportError::TooLarge(1_000))
    );
}

fn flufl_samples() -> Vec<Vec<u8>> {
    let mut names: Vec<_> = std::fs::read_dir(FLUFL)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_are_read_or_refused(raw in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = parse(&raw);
    }

    #[test]
    fn any_nesting_and_recipients_keep_to_the_bounds(depth in 0usize..40, recipients in 0usize..130) {
        match parse(&nested_dsn(depth, recipients)) {
            Ok(report) => {
                prop_assert!(depth <= LIMITS.max_depth);
                prop_assert!(report.recipients.len() <= LIMITS.max_recipients);
                if recipients == 0 {
                    // A bounce naming no address: the signed return path tells whose.
                    prop_assert_eq!(report.recipients.len(), 1);
                    prop_assert_eq!(report.recipients[0].address.as_str(), "");
                } else {
                    prop_assert_eq!(report.recipients.len(), recipients);
                }
            }
            Err(ReportError::TooDeep(_)) | Err(ReportError::TooManyParts(_)) => {
                prop_assert!(depth > LIMITS.max_depth)
            }
            Err(ReportError::TooManyRecipients(_)) => {
                prop_assert!(recipients > LIMITS.max_recipients)
            }
            // A bounce naming nobody, forwarded by somebody who is no mail system: not
            // recognisably a bounce any more.
            Err(ReportError::NotAReport) => prop_assert!(recipients == 0 && depth > 0),
            Err(e) => prop_assert!(false, "{e}"),
        }
    }

    /// Real bounces cut, spliced and garbled anywhere.
    #[test]
    fn real_bounces_garbled_are_read_or_refused(
        pick in any::<prop::sample::Index>(),
        cut in any::<prop::sample::Index>(),
        splice in proptest::collection::vec(any::<u8>(), 0..64),
        repeat in 1usize..50,
    ) {
        let samples = flufl_samples();
        let raw = &samples[pick.index(samples.len())];
        let at = cut.index(raw.len().max(1));
        let mut garbled = raw[..at].to_vec();
        for _ in 0..repeat {
            garbled.extend_from_slice(&splice);
        }
        garbled.extend_from_slice(&raw[at..]);
        let _ = parse(&garbled);
        let _ = parse(&raw[..at]);
    }
}
