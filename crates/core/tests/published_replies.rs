//! The shipped rules against the replies receivers and MTAs publish (Google's SMTP error
//! reference, Microsoft's NDR codes, Yahoo's, Orange's, La Poste's, SFR's… pages, the
//! MTAs' source): each documented phrase, classified as a final refusal, must reach the
//! decision its documentation gives (suppress the address or not), and mostly the class.
//! The few where our decision differs on purpose are listed with why.
#![allow(clippy::unwrap_used)]

use ee_core::feedback::{Class, EventKind, Reply, Rules, classify, parse_status};

/// Phrases whose documented class we do not follow, and why.
const DIFFERENT_ON_PURPOSE: &[(&str, &str)] = &[
    (
        "requested action not taken: mailbox unavailable",
        "GMX also sends it for long-unused mailboxes, but Outlook.com and most others for \
         unknown users: hard, as the corpus's Hotmail bounces are",
    ),
    (
        "remote server returned unknown recipient or mailbox unavailable",
        "Exchange's wrapper: what it wraps is usually an unknown user",
    ),
];

#[test]
fn the_rules_decide_as_the_receivers_document() {
    let rules = Rules::shipped();
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/published-replies.tsv"
    ))
    .unwrap();
    let (mut n, mut decided, mut classed) = (0, 0, 0);
    let mut wrong = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let cols: Vec<&str> = line.split('\t').collect();
        assert!(cols.len() >= 4, "{line}");
        let (want_class, want_category, phrase, who) = (cols[0], cols[1], cols[2], cols[3]);
        assert!(Class::parse(want_class).is_some(), "{line}");
        let mut reply = Reply::from_smtp(None, phrase);
        if reply.status.is_none() {
            reply.status = phrase.split_whitespace().find_map(parse_status);
        }
        let (class, category) = classify(&rules, EventKind::Bounced, &reply);
        n += 1;
        let decision = (class == Class::Hard) == (want_class == "hard");
        classed += u32::from(class.as_str() == want_class);
        if decision {
            decided += 1;
        } else if !DIFFERENT_ON_PURPOSE.iter().any(|(p, _)| *p == phrase) {
            wrong.push(format!(
                "{phrase} ({who}): documented {want_class} {want_category}, ruled {class} {category}"
            ));
        }
    }
    println!("{n} published replies: decision {decided}, class {classed}");
    assert!(n > 400, "{n}");
    assert!(
        wrong.is_empty(),
        "decided otherwise than documented:\n{}",
        wrong.join("\n")
    );
    assert!(
        f64::from(classed) >= 0.95 * f64::from(n),
        "class {classed} of {n}"
    );
}
