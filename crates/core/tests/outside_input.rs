//! Property tests of the pure readers of what outsiders write: segment expressions,
//! templates, tracking tokens, return paths and reference headers, PowerMTA accounting
//! records, reply lines and status codes, the link rewriter. Whatever they are given, they
//! answer (a value or an error) without a panic, and keep to their bounds. Bounded runs
//! (proptest's case count), part of `cargo test`.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use ee_core::feedback::{EventKind, Reply, Rules, accounting, classify, parse_status, verp};
use ee_core::segment::{self, Expr};
use ee_core::template;
use ee_core::tracking::{self, Kind};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Any JSON value, nested up to `depth`.
fn json_value(depth: u32) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-z_]{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("tag"),
            Just("field"),
            Just("op"),
            Just("value"),
            Just("country"),
            Just("eq"),
            Just("in"),
            Just("before"),
            Just("-30d"),
            Just("created_at"),
            Just("custom"),
            Just("engagement"),
            Just("opened"),
            Just("soft_bounced"),
            Just("gt"),
            Just("contains"),
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(depth, 256, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("and".to_owned()),
                    Just("or".to_owned()),
                    Just("not".to_owned()),
                    Just("tag".to_owned()),
                    Just("field".to_owned()),
                    Just("op".to_owned()),
                    Just("value".to_owned()),
                    Just("custom".to_owned()),
                    Just("engagement".to_owned()),
                    Just("days".to_owned()),
                    Just("at_least".to_owned()),
                    Just("campaign".to_owned()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// `{"not": {"not": … {"tag": "A"} …}}`, `depth` levels.
fn nested_not(depth: usize) -> String {
    let mut s = String::from(r#"{"tag": "A"}"#);
    for _ in 0..depth {
        s = format!(r#"{{"not": {s}}}"#);
    }
    s
}

#[test]
fn a_segment_nested_past_its_bound_is_refused_and_one_nested_too_deep_for_the_parser_too() {
    let ok: Expr = serde_json::from_str(&nested_not(10)).unwrap();
    assert!(segment::check(&ok, 0).is_ok());
    let deep: Expr = serde_json::from_str(&nested_not(40)).unwrap();
    assert!(segment::check(&deep, 0).is_err());
    // The JSON reader's own recursion bound refuses what would overflow the stack.
    assert!(serde_json::from_str::<Expr>(&nested_not(5_000)).is_err());
}

#[test]
fn a_megabyte_of_unclosed_links_is_rewritten_in_one_pass() {
    let mut html = "<a ".repeat(349_000);
    html.push('>');
    let (out, links) = tracking::rewrite_links(&html, None, |i, _| format!("x{i}"));
    assert_eq!(out, html);
    assert!(links.is_empty());
}

/// The work link rewriting does (bytes its searches read) for one body of `n` copies of
/// `unit`, and for ten bodies of a tenth of that.
fn work_one_and_ten_tenths(unit: &str, n: usize, close: &str) -> (u64, u64) {
    let work = |copies: usize| {
        let mut html = unit.repeat(copies);
        html.push_str(close);
        tracking::rewrite_links_counted(&html, None, |i, _| format!("https://t.test/{i}")).2
    };
    (work(n), 10 * work(n / 10))
}

#[test]
fn link_rewriting_costs_what_ten_tenths_cost_whatever_the_body() {
    // 1 MB against ten 100 KB bodies: linear work means about the same (the quadratic
    // reader read 349 000 × 1 MB for the first).
    for (unit, n, close) in [
        ("<a ", 349_000, ">"),
        ("<a href=\"https://brand.test/p\">x</a> ", 30_000, ""),
        ("<a href='", 100_000, ""),
        ("<a title=\"x\" ", 80_000, ">"),
        ("<p>text without links</p>", 40_000, ""),
    ] {
        let (one, ten) = work_one_and_ten_tenths(unit, n, close);
        assert!(
            one <= 2 * ten && one >= ten / 2,
            "{unit:?} × {n}: {one} bytes read against {ten} for ten tenths"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn segment_expressions_are_read_or_refused(value in json_value(8)) {
        if let Ok(expr) = serde_json::from_value::<Expr>(value) {
            let _ = segment::check(&expr, 1_764_000_000_000);
        }
    }

    #[test]
    fn templates_are_parsed_or_refused_and_rendered_in_bounds(
        source in "([A-Z_\\[\\]|<>&a-z ]|\\[FNAME\\|[^\\]]{0,8}\\]){0,300}",
        value in ".{0,40}",
    ) {
        let declared = BTreeMap::new();
        let _ = template::check([("html", source.as_str())], &declared);
        if let Ok(segments) = template::parse(&source) {
            let values = BTreeMap::from([("FNAME".to_owned(), value.clone())]);
            let defaults = BTreeMap::new();
            let rendered = template::render(&segments, &template::Values { values: &values, defaults: &defaults }, true);
            // Each variable adds at most its escaped value (6 bytes a character at worst).
            let vars = segments.iter().filter(|s| matches!(s, template::Segment::Var { .. })).count();
            prop_assert!(rendered.len() <= source.len() + vars * (value.len() * 6 + 64));
        }
    }

    #[test]
    fn tracking_tokens_verify_only_what_was_signed(
        token in ".{0,200}",
        id in "[0-9a-f-]{1,40}",
        index in any::<u32>(),
    ) {
        let key = b"tracking-key";
        let _ = tracking::verify(key, &token, Kind::Click);
        let signed = tracking::sign(key, Kind::Click, &id, index);
        let read = tracking::verify(key, &signed, Kind::Click).unwrap();
        prop_assert_eq!(read.index, index);
        prop_assert!(tracking::verify(b"other key", &signed, Kind::Click).is_err());
        prop_assert!(tracking::verify(key, &signed, Kind::Open).is_err());
    }

    #[test]
    fn return_paths_and_references_name_only_what_was_signed(
        text in ".{0,300}",
        id in "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
    ) {
        let key = b"verp-key";
        let _ = verp::message_of(key, &text);
        let _ = verp::message_of_reference(key, &text);
        let _ = verp::message_of_message_id(&text);
        let rp = verp::return_path(key, &id, "bounces.example");
        prop_assert_eq!(verp::message_of(key, &rp), Some(id.clone()));
        prop_assert_eq!(verp::message_of_reference(key, &verp::reference(key, &id)), Some(id.clone()));
        prop_assert_eq!(verp::message_of(b"another", &rp), None);
    }

    #[test]
    fn reply_lines_and_status_codes_are_read_or_refused(line in ".{0,300}") {
        let rules = Rules::shipped();
        let _ = parse_status(&line);
        let reply = Reply::from_smtp(None, &line);
        let (class, _) = classify(&rules, EventKind::Bounced, &reply);
        // A temporary reply is never hard.
        if reply.is_temporary() {
            prop_assert_ne!(class, ee_core::feedback::Class::Hard);
        }
    }

    #[test]
    fn operator_rules_files_are_read_or_refused(text in "((hard|soft|block|none|x) [a-z-]{0,14} (text \"[a-z ]{0,10}\"?|status [0-9*.]{0,6}|code [0-9x]{0,4}|[a-z]{0,5}) ?\n?){0,20}") {
        let _ = Rules::with_extra(&text);
    }

    #[test]
    fn accounting_records_are_read_or_refused(
        values in prop::collection::btree_map(
            prop_oneof![
                Just("type"), Just("timeLogged"), Just("orig"), Just("rcpt"), Just("dsnAction"),
                Just("dsnStatus"), Just("dsnDiag"), Just("bounceCat"), Just("dlvSourceIp"),
                Just("jobId"), Just("header_Message-ID"), Just("header_To"),
            ],
            ".{0,80}",
            0..12,
        ),
    ) {
        let rules = Rules::shipped();
        let _ = accounting::event(&rules, b"key", |name| values.get(name).map(String::as_str));
    }

    #[test]
    fn links_are_rewritten_without_losing_a_byte_outside_them(html in "(<a |<a href=\"https://x.test/[a-z]{0,5}\">|>|[a-z ]{0,5}|<|')*") {
        let (out, links) = tracking::rewrite_links(&html, None, |i, _| format!("https://t.test/{i}"));
        prop_assert!(links.len() <= html.matches("<a").count());
        if links.is_empty() {
            prop_assert_eq!(out, html);
        }
    }
}
