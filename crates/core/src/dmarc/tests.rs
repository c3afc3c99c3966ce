use super::summary::{Source, own_failures, rate, summarize};
use super::*;

/// A report written for these tests after RFC 7489 appendix C: three records for
/// `brand.test`, one of them twice.
fn report(records: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<feedback>
  <version>1.0</version>
  <report_metadata>
    <org_name>receiver.test</org_name>
    <email>noreply-dmarc@receiver.test</email>
    <report_id>r-2026-12-01</report_id>
    <date_range><begin>1796428800</begin><end>1796515199</end></date_range>
  </report_metadata>
  <policy_published>
    <domain>Brand.Test.</domain><adkim>r</adkim><aspf>s</aspf><p>quarantine</p><sp>none</sp><pct>100</pct>
  </policy_published>
  {records}
</feedback>"#
    )
}

fn record(ip: &str, count: u64, dkim: &str, spf: &str) -> String {
    format!(
        "<record><row><source_ip>{ip}</source_ip><count>{count}</count>\
         <policy_evaluated><disposition>none</disposition><dkim>{dkim}</dkim><spf>{spf}</spf></policy_evaluated></row>\
         <identifiers><header_from>brand.test</header_from><envelope_from>bounces.brand.test</envelope_from></identifiers>\
         <auth_results><dkim><domain>brand.test</domain><selector>s1</selector><result>{dkim}</result></dkim>\
         <spf><domain>bounces.brand.test</domain><scope>mfrom</scope><result>{spf}</result></spf></auth_results></record>"
    )
}

fn three() -> String {
    report(
        &[
            record("192.0.2.10", 40, "pass", "pass"),
            record("192.0.2.10", 2, "pass", "pass"),
            record("198.51.100.7", 5, "fail", "fail"),
            record("2001:db8::1", 3, "pass", "fail"),
        ]
        .concat(),
    )
}

#[test]
fn a_report_is_read() {
    let r = parse(three().as_bytes()).unwrap();
    assert_eq!(r.org_name, "receiver.test");
    assert_eq!(r.email, "noreply-dmarc@receiver.test");
    assert_eq!(r.report_id, "r-2026-12-01");
    assert_eq!((r.begin, r.end), (1_796_428_800, 1_796_515_199));
    assert_eq!(r.policy.domain, "brand.test");
    assert_eq!(r.policy.adkim, Some('r'));
    assert_eq!(r.policy.aspf, Some('s'));
    assert_eq!(r.policy.p, Some(Disposition::Quarantine));
    assert_eq!(r.policy.sp, Some(Disposition::None));
    assert_eq!(r.policy.pct, Some(100));
    assert_eq!(r.records.len(), 4);
    assert_eq!(r.messages(), 50);
    assert_eq!(r.skipped, 0);
    let failing = &r.records[2];
    assert_eq!(failing.source_ip.to_string(), "198.51.100.7");
    assert!(!failing.dkim_aligned && !failing.spf_aligned && !failing.passes());
    assert_eq!(failing.header_from, "brand.test");
    assert_eq!(failing.envelope_from.as_deref(), Some("bounces.brand.test"));
    assert_eq!(
        failing.dkim,
        [AuthResult {
            domain: "brand.test".into(),
            result: "fail".into()
        }]
    );
    assert!(r.records[3].passes(), "DKIM aligned alone passes");
    // The two records of one source with one outcome are stored as one.
    let merged = r.merged_records();
    assert_eq!(merged.len(), 3);
    let first = merged
        .iter()
        .find(|m| m.source_ip.to_string() == "192.0.2.10")
        .unwrap();
    assert_eq!(first.count, 42);
}

#[test]
fn namespaced_reports_and_entities_read() {
    let xml = three()
        .replace(
            "<feedback>",
            r#"<d:feedback xmlns:d="urn:ietf:params:xml:ns:dmarc-2.0">"#,
        )
        .replace("</feedback>", "</d:feedback>")
        .replace(
            "receiver.test</org_name>",
            "R&amp;D &#x263A; &lt;x&gt;</org_name>",
        )
        .replace("<report_id>r-2026-12-01", "<report_id><![CDATA[r<1>]]>");
    let r = parse(xml.as_bytes()).unwrap();
    assert_eq!(r.org_name, "R&D \u{263A} <x>");
    assert_eq!(r.report_id, "r<1>");
    assert_eq!(r.records.len(), 4);
}

#[test]
fn records_that_cannot_be_read_are_skipped_and_counted() {
    let xml = report(
        &[
            record("not-an-ip", 1, "pass", "pass"),
            record("192.0.2.1", 1, "maybe", "pass"),
            record("192.0.2.2", MAX_COUNT + 1, "pass", "pass"),
            record("192.0.2.3", 7, "pass", "fail"),
        ]
        .concat(),
    );
    let r = parse(xml.as_bytes()).unwrap();
    assert_eq!(r.skipped, 3);
    assert_eq!(r.records.len(), 1);
    assert_eq!(r.messages(), 7);
}

#[test]
fn what_is_no_report_says_why() {
    let cases = [
        ("<html><body/></html>", "root element is <html>"),
        ("", "no report_metadata/org_name"),
        (
            &three().replace(
                "<domain>Brand.Test.</domain>",
                "<domain>not a domain</domain>",
            ),
            "no domain name",
        ),
        (
            &three().replace("1796515199", "17"),
            "ends before it begins",
        ),
        (
            &three().replace("<begin>1796428800", "<begin>soon"),
            "no time",
        ),
        (
            &three().replace("<report_id>r-2026-12-01</report_id>", ""),
            "report_id",
        ),
    ];
    for (xml, why) in cases {
        let e = parse(xml.as_bytes()).unwrap_err();
        assert!(matches!(e, DmarcError::NotAReport(_)), "{xml}: {e}");
        assert!(e.to_string().contains(why), "{e} / {why}");
        assert!(!e.is_over_limit());
    }
    for broken in [
        "<feedback><a></b></feedback>",
        "<feedback><report_metadata>",
    ] {
        assert!(
            matches!(parse(broken.as_bytes()), Err(DmarcError::Xml(_))),
            "{broken}"
        );
    }
}

#[test]
fn no_entity_is_ever_expanded() {
    let laughs = r#"<?xml version="1.0"?>
<!DOCTYPE feedback [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>
<feedback><report_metadata><org_name>&b;</org_name></report_metadata></feedback>"#;
    assert_eq!(parse(laughs.as_bytes()), Err(DmarcError::Doctype));
    let external = r#"<!DOCTYPE feedback SYSTEM "file:///etc/passwd"><feedback/>"#;
    assert_eq!(parse(external.as_bytes()), Err(DmarcError::Doctype));
    let undefined = three().replace("receiver.test</org_name>", "&secret;</org_name>");
    assert!(matches!(parse(undefined.as_bytes()), Err(DmarcError::Xml(e)) if e.contains("secret")));
}

#[test]
fn every_bound_holds() {
    let small = Limits {
        max_xml_bytes: 100_000,
        max_records: 3,
        max_depth: 8,
        max_text: 64,
        max_auth_results: 1,
    };
    let e = parse_with(three().as_bytes(), &small).unwrap_err();
    assert_eq!(e, DmarcError::TooManyRecords(3));
    assert!(e.is_over_limit());
    let big = "x".repeat(200_000);
    assert_eq!(
        parse_with(big.as_bytes(), &small),
        Err(DmarcError::TooLarge(100_000))
    );
    let deep = format!(
        "<feedback>{}{}</feedback>",
        "<a>".repeat(20),
        "</a>".repeat(20)
    );
    assert_eq!(
        parse_with(deep.as_bytes(), &small),
        Err(DmarcError::TooDeep(8))
    );
    let long = three().replace(
        "receiver.test</org_name>",
        &format!("{}</org_name>", "o".repeat(65)),
    );
    assert_eq!(
        parse_with(long.as_bytes(), &small),
        Err(DmarcError::TextTooLong(64))
    );
    // Long text in an element not read is no reason to refuse.
    let comment = three().replace(
        "<version>1.0</version>",
        &format!("<extra>{}</extra>", "c".repeat(5_000)),
    );
    assert!(parse(comment.as_bytes()).is_ok());
    // Results past the bound are left out.
    let many = three().replace(
        "<auth_results>",
        "<auth_results><dkim><domain>a.test</domain><result>pass</result></dkim>",
    );
    let r = parse_with(
        many.as_bytes(),
        &Limits {
            max_records: 10,
            max_text: 1024,
            ..small
        },
    )
    .unwrap();
    assert_eq!(r.records[0].dkim.len(), 1);
    assert_eq!(r.records[0].dkim[0].domain, "a.test");
}

#[test]
fn a_report_goes_only_to_the_holder_of_its_domain() {
    let h = |t: &str, proven| Holder {
        tenant_id: t.into(),
        domain_id: format!("d-{t}"),
        proven,
    };
    assert!(attribute(&[]).is_err());
    assert_eq!(attribute(&[h("a", false)]).unwrap().tenant_id, "a");
    let two = [h("a", false), h("b", true)];
    assert_eq!(attribute(&two).unwrap().tenant_id, "b");
    assert!(attribute(&[h("a", false), h("b", false)]).is_err());
    assert!(attribute(&[h("a", true), h("b", true)]).is_err());
}

#[test]
fn a_summary_adds_up_sources() {
    let s = |ip: &str, own, messages, dkim, spf, passed| Source {
        ip: ip.into(),
        own,
        messages,
        dkim_aligned: dkim,
        spf_aligned: spf,
        passed,
    };
    let sum = summarize(vec![
        s("192.0.2.10", true, 40, 40, 38, 40),
        s("198.51.100.7", false, 5, 0, 0, 0),
        s("192.0.2.11", true, 10, 2, 0, 2),
        s("192.0.2.10", true, 2, 2, 2, 2),
        s("203.0.113.5", false, 3, 3, 0, 3),
    ]);
    assert_eq!(sum.messages, 60);
    assert_eq!(sum.dkim_aligned, 47);
    assert_eq!(sum.spf_aligned, 40);
    assert_eq!(sum.passed, 47);
    assert_eq!(sum.dkim_pass_rate, 0.7833);
    assert_eq!(sum.spf_pass_rate, 0.6667);
    assert_eq!(sum.source_count, 4);
    assert_eq!(sum.sources[0].ip, "192.0.2.10");
    assert_eq!(sum.sources[0].messages, 42);
    assert_eq!(sum.own_failing.len(), 1);
    assert_eq!(sum.own_failing[0].ip, "192.0.2.11");
    assert_eq!(sum.own_failing[0].failed(), 8);
    let unknown: Vec<&str> = sum.unknown_senders.iter().map(|s| s.ip.as_str()).collect();
    assert_eq!(unknown, ["198.51.100.7", "203.0.113.5"]);
    assert_eq!(rate(1, 0), 0.0);
    assert_eq!(summarize(Vec::new()).dmarc_pass_rate, 0.0);
}

#[test]
fn own_ips_failing_are_found() {
    let r = parse(three().as_bytes()).unwrap();
    let ours = |ip: &std::net::IpAddr| ip.to_string() != "2001:db8::1";
    let failing = own_failures(&r.records, ours);
    assert_eq!(failing.len(), 1);
    assert_eq!(failing[0].0.to_string(), "198.51.100.7");
    assert_eq!(failing[0].1, 5);
    assert!(own_failures(&r.records, |_| false).is_empty());
}

proptest::proptest! {
    #[test]
    fn any_bytes_are_read_or_refused(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2000)) {
        let _ = parse(&bytes);
    }

    #[test]
    fn any_text_in_a_report_is_read_or_refused(
        at in 0usize..1900,
        cut in 0usize..200,
        insert in "[<>&;#/!a-z0-9\\[\\]\"' =-]{0,40}",
    ) {
        let mut xml = three();
        let at = xml.char_indices().map(|(i, _)| i).find(|i| *i >= at.min(xml.len())).unwrap_or(xml.len());
        let end = xml[at..].char_indices().map(|(i, _)| at + i).nth(cut).unwrap_or(xml.len());
        xml.replace_range(at..end, &insert);
        if let Ok(r) = parse(xml.as_bytes()) {
            proptest::prop_assert!(r.records.len() + r.skipped as usize <= LIMITS.max_records);
            proptest::prop_assert!(r.begin <= r.end);
        }
    }
}
