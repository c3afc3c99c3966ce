use super::*;
use ee_core::feedback::{Category, Class, Rules, classify};

const FLUFL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/bounces-flufl");

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/data/reports/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("sample")
}

#[test]
fn a_dsn_gives_each_recipient_its_action_status_and_diagnostic() {
    let report = parse(&sample("dsn_verp.eml")).expect("a report");
    assert_eq!(report.kind, ReportKind::Dsn);
    assert_eq!(
        report.original_message_id.as_deref(),
        Some("0191f00d-0000-7000-8000-000000000002@brand.example")
    );
    assert_eq!(
        report.original_campaign_id.as_deref(),
        Some("0191c0de-campaign")
    );
    let [gone, full] = report.recipients.as_slice() else {
        panic!("two recipients: {:?}", report.recipients);
    };
    assert_eq!(gone.address, "gone@example.org");
    assert_eq!(gone.kind, EventKind::Bounced);
    assert_eq!(gone.reply.code, Some(550));
    assert_eq!(gone.reply.status.as_deref(), Some("5.1.1"));
    assert!(
        gone.reply
            .diagnostic
            .contains("User unknown in local recipient table")
    );
    assert_eq!(gone.remote_mta.as_deref(), Some("mailstore.example.org"));
    let rules = Rules::shipped();
    assert_eq!(
        classify(&rules, gone.kind, &gone.reply),
        (Class::Hard, Category::BadMailbox)
    );
    assert_eq!(full.kind, EventKind::Deferred);
    assert_eq!(
        classify(&rules, full.kind, &full.reply),
        (Class::NoEffect, Category::QuotaIssues)
    );
}

#[test]
fn an_arf_report_is_a_complaint_for_the_original_recipient() {
    let report = parse(&sample("arf_01.eml")).expect("a report");
    assert_eq!(report.kind, ReportKind::Arf);
    assert_eq!(report.feedback_type.as_deref(), Some("abuse"));
    assert_eq!(report.source_ip.as_deref(), Some("192.0.2.1"));
    assert_eq!(
        report.original_campaign_id.as_deref(),
        Some("0191c0de-campaign")
    );
    assert_eq!(
        report.original_message_id.as_deref(),
        Some("0191f00d-0000-7000-8000-000000000001@brand.example")
    );
    let [r] = report.recipients.as_slice() else {
        panic!("one recipient: {:?}", report.recipients);
    };
    assert_eq!(
        (r.address.as_str(), r.kind),
        ("reader@mail.example.net", EventKind::Complaint)
    );
}

#[test]
fn a_message_that_is_no_report_gives_none() {
    let plain = b"From: a@b.example\r\nTo: c@d.example\r\nSubject: hello\r\n\r\nJust a note.\r\n";
    assert_eq!(parse(plain), Err(ReportError::NotAReport));
    assert_eq!(parse(b""), Err(ReportError::NotAReport));
}

/// Free-text bounces our patterns read wrong, kept in view: Yale's server writes
/// "mike.fox@yale.edu fails, try michael.j.fox@yale.edu" about another recipient.
/// Sendmail's sendmail_01 names the alias it expanded (`zzzzz@shaft.coal.nl`, alone on
/// its line) besides the address flufl expects: an extra address is kept unmatched.
/// AOL's aol_01 names a screen name alone ("screenname"); flufl's AOL detector appends
/// `@aol.com`, we do not guess a domain (the signed return path names the recipient).
const KNOWN_MISREADS: &[&str] = &["yale_01.txt", "sendmail_01.txt", "aol_01.txt"];

/// The flufl.bounce corpus: every message gives exactly the addresses flufl expects (but
/// the known misreads above), each with the permanence flufl gives it (a permanent
/// failure is a bounce, a temporary one a deferral), DSN or free text alike.
#[test]
fn the_flufl_bounce_corpus() {
    let expected = std::fs::read_to_string(format!("{FLUFL}/expected.tsv")).expect("tsv");
    let (mut rows, mut exact) = (0, 0);
    let mut wrong = Vec::new();
    let mut dsn_wrong = Vec::new();
    for line in expected.lines().filter(|l| !l.starts_with('#')) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (file, detector, permanence, addresses) = (cols[0], cols[1], cols[2], cols[3]);
        // groupwise_02 is listed twice (one detector finds nothing); skip the empty one.
        if addresses.is_empty() {
            continue;
        }
        rows += 1;
        let raw = std::fs::read(format!("{FLUFL}/{file}")).expect("sample");
        let want: std::collections::BTreeSet<String> = addresses
            .split(',')
            .map(|a| a.to_ascii_lowercase())
            .collect();
        let report = parse(&raw);
        let got: std::collections::BTreeSet<String> = report
            .iter()
            .flat_map(|r| r.recipients.iter())
            .map(|r| r.address.to_ascii_lowercase())
            // No address named (the signed return path tells whose): no false recipient.
            .filter(|a| !a.is_empty())
            .collect();
        if detector == "dsn" && got != want {
            dsn_wrong.push(format!("{file}: got {got:?}, want {want:?}"));
            continue;
        }
        if got == want {
            exact += 1;
            let kind = if permanence == "P" {
                EventKind::Bounced
            } else {
                EventKind::Deferred
            };
            let report = report.expect("a report");
            let kinds: Vec<EventKind> = report
                .recipients
                .iter()
                .filter(|r| !r.address.is_empty())
                .map(|r| r.kind)
                .collect();
            if kinds.iter().any(|k| *k != kind) {
                wrong.push(format!(
                    "{file}: read as {kinds:?}, flufl says {permanence}"
                ));
            }
        } else if !KNOWN_MISREADS.contains(&file) {
            wrong.push(format!("{file}: got {got:?}, want {want:?}"));
        }
    }
    println!("flufl corpus: {exact} of {rows} bounces read exactly");
    assert!(rows > 90, "{rows}");
    assert!(
        dsn_wrong.is_empty(),
        "DSNs misread:\n{}",
        dsn_wrong.join("\n")
    );
    assert!(
        wrong.is_empty(),
        "read otherwise than flufl expects:\n{}",
        wrong.join("\n")
    );
    assert_eq!(
        exact,
        rows - KNOWN_MISREADS.len(),
        "only the known misreads differ"
    );
}
