use super::*;

fn bounce(line: &str) -> (Class, Category) {
    classify(
        &Rules::shipped(),
        EventKind::Bounced,
        &Reply::from_smtp(None, line),
    )
}

#[test]
fn the_shipped_rules_parse() {
    let rules = Rules::parse(rules::SHIPPED).expect("shipped rules");
    assert!(rules.len() > 100, "{}", rules.len());
}

#[test]
fn unknown_users_and_domains_are_hard() {
    use Category::*;
    for (line, category) in [
        (
            "550 5.1.1 <a@b.example>: Recipient address rejected: User unknown",
            BadMailbox,
        ),
        (
            "550-5.1.1 The email account that you tried to reach does not exist.",
            BadMailbox,
        ),
        (
            "550 Requested action not taken: mailbox unavailable",
            BadMailbox,
        ),
        (
            "554 delivery error: dd This user doesn't have a yahoo.com account",
            BadMailbox,
        ),
        (
            "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
            BadMailbox,
        ),
        (
            "556 5.1.10 recipient domain does not accept mail (null MX)",
            BadDomain,
        ),
        ("550 5.4.4 Unable to route", BadDomain),
        (
            "Host or domain name not found. Name service error",
            BadDomain,
        ),
        ("550 5.1.6 Recipient mailbox has moved", BadMailbox),
        ("551 User not local", BadMailbox),
    ] {
        assert_eq!(bounce(line), (Class::Hard, category), "{line}");
    }
}

#[test]
fn full_disabled_and_blocked_are_not_hard() {
    use Category::*;
    for (line, class, category) in [
        ("552 5.2.2 Mailbox full", Class::Soft, QuotaIssues),
        (
            "452 4.2.2 The email account that you tried to reach is over quota",
            Class::Soft,
            QuotaIssues,
        ),
        (
            "550 5.2.1 The email account that you tried to reach is disabled",
            Class::Soft,
            InactiveMailbox,
        ),
        (
            "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org",
            Class::Block,
            SpamRelated,
        ),
        (
            "550 5.7.1 Our system has detected that this message is likely unsolicited mail",
            Class::Block,
            SpamRelated,
        ),
        (
            "550 5.7.26 Unauthenticated email from example.com is not accepted due to domain's DMARC policy",
            Class::NoEffect,
            BadConfiguration,
        ),
        (
            "550 5.7.1 Message rejected due to local policy",
            Class::Block,
            PolicyRelated,
        ),
        (
            "554 5.7.1 <a@b.example>: Relay access denied",
            Class::NoEffect,
            RelayingIssues,
        ),
        (
            "554 5.6.0 Message content rejected",
            Class::Block,
            ContentRelated,
        ),
        (
            "500 5.5.1 Command unrecognized",
            Class::NoEffect,
            ProtocolErrors,
        ),
    ] {
        assert_eq!(bounce(line), (class, category), "{line}");
    }
}

#[test]
fn a_temporary_reply_is_never_hard_and_a_deferral_has_no_effect() {
    // A "hard" rule met by a 4xx reply gives soft.
    assert_eq!(
        bounce("450 4.1.1 <a@b.example>: Recipient address rejected: User unknown"),
        (Class::Soft, Category::BadMailbox)
    );
    let rules = Rules::shipped();
    let reply = Reply::from_smtp(None, "550 5.1.1 User unknown");
    assert_eq!(
        classify(&rules, EventKind::Deferred, &reply),
        (Class::NoEffect, Category::BadMailbox)
    );
    assert_eq!(
        classify(
            &rules,
            EventKind::Delivered,
            &Reply::from_smtp(None, "250 2.0.0 OK")
        )
        .0,
        Class::Delivered
    );
    assert_eq!(
        classify(&rules, EventKind::Complaint, &Reply::default()),
        (Class::Complaint, Category::SpamRelated)
    );
}

#[test]
fn what_no_rule_knows_is_soft_other_never_hard() {
    assert_eq!(
        bounce("554 Transaction failed"),
        (Class::Soft, Category::Other)
    );
    assert_eq!(
        classify(
            &Rules::default(),
            EventKind::Bounced,
            &Reply::from_smtp(Some(550), "")
        ),
        (Class::Soft, Category::Other)
    );
}

#[test]
fn the_reply_is_read_from_an_smtp_line() {
    let r = Reply::from_smtp(None, "550 5.1.1 <x@y.example> User unknown");
    assert_eq!((r.code, r.status.as_deref()), (Some(550), Some("5.1.1")));
    let r = Reply::from_smtp(Some(421), "4.7.0 try later");
    assert_eq!((r.code, r.status.as_deref()), (Some(421), Some("4.7.0")));
    let r = Reply::from_smtp(Some(550), "mailbox unavailable");
    assert_eq!((r.code, r.status), (Some(550), None));
    assert_eq!(parse_status("5.1.10"), Some("5.1.10".into()));
    assert_eq!(parse_status("(#5.1.1)"), Some("5.1.1".into()));
    for bad in ["3.1.1", "5.1", "5.a.1", "5.1.1.1", "5.1.1000", ""] {
        assert_eq!(parse_status(bad), None, "{bad}");
    }
}

#[test]
fn a_deployments_rules_come_first_and_bad_lines_are_named() {
    let rules =
        Rules::with_extra("hard bad-mailbox text \"mailbox full\"  # this site knows better\n")
            .expect("rules");
    assert_eq!(
        classify(
            &rules,
            EventKind::Bounced,
            &Reply::from_smtp(None, "552 5.2.2 Mailbox full")
        ),
        (Class::Hard, Category::BadMailbox)
    );
    for (text, line, message) in [
        (
            "\n\nbogus bad-mailbox code 550",
            3,
            "unknown class \"bogus\"",
        ),
        ("hard no-such code 550", 1, "unknown category \"no-such\""),
        ("hard other", 1, "a rule needs at least one condition"),
        (
            "hard other text \"open",
            1,
            "the quoted string is not closed",
        ),
        ("hard other code 5", 1, "bad code pattern \"5\""),
        ("hard other status 3.1.1", 1, "bad status pattern \"3.1.1\""),
        ("hard other color red", 1, "unknown condition \"color\""),
    ] {
        let e = Rules::parse(text).expect_err(text);
        assert_eq!((e.line, e.message.as_str()), (line, message), "{text}");
    }
}

#[test]
fn every_condition_of_a_rule_must_hold() {
    let rules = Rules::parse("block spam-related code 5xx text \"listed\"\n").expect("rules");
    assert!(
        rules
            .classify(&Reply::from_smtp(None, "554 listed at x"))
            .is_some()
    );
    assert!(
        rules
            .classify(&Reply::from_smtp(None, "451 listed at x"))
            .is_none()
    );
    assert!(
        rules
            .classify(&Reply::from_smtp(None, "554 refused"))
            .is_none()
    );
}

#[test]
fn names_round_trip() {
    assert_eq!(Category::ALL.len(), 17);
    for c in Category::ALL {
        assert_eq!(Category::parse(c.as_str()), Some(*c));
        assert_eq!(serde_json::to_value(c).expect("json"), c.as_str());
    }
    for c in Class::ALL {
        assert_eq!(serde_json::to_value(c).expect("json"), c.as_str());
    }
    for s in Source::ALL {
        assert_eq!(serde_json::to_value(s).expect("json"), s.as_str());
    }
}

#[test]
fn a_webhooks_type_stands_when_the_reply_says_nothing_the_rules_know() {
    let rules = Rules::shipped();
    let (kind, claimed) = reported_type("hard").expect("known");
    assert_eq!(
        classify_reported(&rules, kind, claimed, &Reply::default()),
        (Class::Hard, Category::BadMailbox)
    );
    // The reply's evidence wins over the sender's word.
    assert_eq!(
        classify_reported(
            &rules,
            kind,
            claimed,
            &Reply::from_smtp(None, "552 5.2.2 Mailbox full")
        ),
        (Class::Soft, Category::QuotaIssues)
    );
    let (kind, claimed) = reported_type("complaint").expect("known");
    assert_eq!(
        classify_reported(&rules, kind, claimed, &Reply::default()).0,
        Class::Complaint
    );
    assert_eq!(
        reported_type("Soft"),
        Some((EventKind::Bounced, Some(Class::Soft)))
    );
    assert_eq!(reported_type("weird"), None);
}

#[test]
fn a_continuation_line_names_its_code_and_status() {
    let reply = Reply::from_smtp(None, "421-4.7.28 Our system has detected an unusual rate");
    assert_eq!(reply.code, Some(421));
    assert_eq!(reply.status.as_deref(), Some("4.7.28"));
    let reply = Reply::from_smtp(None, "550-5.1.1 The email account does not exist");
    assert_eq!(
        (reply.code, reply.status.as_deref()),
        (Some(550), Some("5.1.1"))
    );
    // Not a code: left alone.
    let reply = Reply::from_smtp(Some(451), "abc-4.7.1 x");
    assert_eq!((reply.code, reply.status), (Some(451), None));
}
