use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::template;

fn sample() -> Value {
    json!({
        "style": {"width": 600, "link_color": "#0055AA"},
        "blocks": [
            {"type": "heading", "text": "Bonjour [FNAME|ami]"},
            {"type": "text", "text": "Our **new** offer, *today*:\n\n- one\n- two\n\nSee [the site](https://brand.test/offer)."},
            {"type": "image", "src": "https://brand.test/logo.png", "alt": "Logo", "href": "https://brand.test", "width": 200, "align": "center"},
            {"type": "button", "label": "Buy now", "href": "https://brand.test/buy?a=1&b=2", "color": "#ff6600"},
            {"type": "columns", "columns": [
                {"blocks": [{"type": "text", "text": "Left"}]},
                {"blocks": [{"type": "button", "label": "Right", "href": "[SITE_URL]/right"}]}
            ]},
            {"type": "divider", "thickness": 2},
            {"type": "spacer", "height": 16},
            {"type": "footer", "text": "Brand, 1 rue de Paris", "unsubscribe": "Se désabonner"}
        ]
    })
}

fn error_of(value: Value) -> DesignError {
    parse(&value).expect_err("refused")
}

#[test]
fn a_design_renders_as_tables_with_inline_styles() {
    let design = parse(&sample()).expect("valid");
    let html = render(&design, "fr");
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<html lang=\"fr\" dir=\"ltr\">"));
    assert!(html.contains("<table role=\"presentation\""));
    assert!(html.contains("max-width:600px"));
    assert!(!html.contains("<style"), "no style sheet");
    assert!(!html.contains("class="), "no class");
    assert!(!html.contains("<div"), "tables only");
    assert!(html.contains(">Bonjour [FNAME|ami]</h1>"));
    assert!(html.contains("<strong>new</strong>"));
    assert!(html.contains("<em>today</em>"));
    assert!(html.contains("<li style="));
    assert!(html.contains("<a href=\"https://brand.test/offer\" style=\"color:#0055aa;"));
    assert!(html.contains("href=\"https://brand.test/buy?a=1&amp;b=2\""));
    assert!(html.contains("background-color:#ff6600"));
    assert!(html.contains("<img src=\"https://brand.test/logo.png\" alt=\"Logo\" width=\"200\""));
    assert!(html.contains("width=\"50%\""), "two columns share the row");
    assert!(html.contains("href=\"[SITE_URL]/right\""));
    assert!(html.contains("border-top:2px solid"));
    assert!(html.contains("height:16px"));
    assert!(html.contains("<a href=\"[UNSUBSCRIBE_URL]\""));
    assert!(html.contains(">Se désabonner</a>"));
    // The footer comes after the content's table.
    let content_end = html
        .find("</table>\n<table")
        .expect("footer table after content");
    assert!(html[content_end..].contains("[UNSUBSCRIBE_URL]"));
    // Its tags are the template's: nothing unknown, nothing broken.
    let problems = template::check([("html", html.as_str())], &Default::default());
    assert!(
        problems.unknown == ["SITE_URL".to_owned()].into_iter().collect(),
        "{problems:?}"
    );
    assert!(problems.syntax.is_empty(), "{problems:?}");
    // What the property below asks of every accepted design holds for this one.
    assert_eq!(only_known_tags(&html), Ok(()));
    for tag in ["table", "tr", "td", "a", "p", "ul", "li", "strong", "em"] {
        assert!(balanced(&html, tag), "{tag}");
    }
}

#[test]
fn arabic_is_written_right_to_left() {
    let design = parse(&sample()).expect("valid");
    let html = render(&design, "ar");
    assert!(html.contains("<html lang=\"ar\" dir=\"rtl\">"));
    assert!(
        html.contains("padding:0 24px 0 0"),
        "lists indent from the right"
    );
}

#[test]
fn texts_are_escaped_never_markup() {
    let design = parse(&json!({"blocks": [
        {"type": "heading", "text": "\"><script>alert(1)</script>"},
        {"type": "text", "text": "<img src=x onerror=alert(1)> & <b>bold</b>"},
        {"type": "button", "label": "<i>x</i>", "href": "https://a.test/\"onmouseover"},
    ]}));
    // A quote has no place in an address.
    let e = design.expect_err("quote refused");
    assert_eq!(e.path, "blocks[2].href");
    let design = parse(&json!({"blocks": [
        {"type": "heading", "text": "\"><script>alert(1)</script>"},
        {"type": "text", "text": "<img src=x onerror=alert(1)> & <b>bold</b>"},
        {"type": "footer", "text": "<b>x</b>", "unsubscribe": "<a href=x>"},
    ]}))
    .expect("valid");
    let html = render(&design, "en");
    assert!(!html.contains("<script"), "{html}");
    assert!(!html.contains("<img src=x"), "{html}");
    assert!(!html.contains("<b>"), "{html}");
    assert!(html.contains("&lt;script&gt;"));
    assert!(html.contains("&amp; &lt;b&gt;bold&lt;/b&gt;"));
    assert!(html.contains("&lt;a href=x&gt;</a>"));
}

#[test]
fn links_that_run_or_embed_are_refused_where_they_are() {
    for (value, path) in [
        (
            json!({"blocks": [{"type": "button", "label": "x", "href": "javascript:alert(1)"}]}),
            "blocks[0].href",
        ),
        (
            json!({"blocks": [{"type": "text", "text": "[x](javascript:alert(1))"}]}),
            "blocks[0].text",
        ),
        (
            json!({"blocks": [{"type": "text", "text": "[x][r]\n\n[r]: data:text/html,hi"}]}),
            "blocks[0].text",
        ),
        (
            json!({"blocks": [{"type": "image", "src": "mailto:a@b.test"}]}),
            "blocks[0].src",
        ),
        (
            json!({"blocks": [{"type": "image", "src": "https://a.test/i.png", "href": "vbscript:x"}]}),
            "blocks[0].href",
        ),
        (
            json!({"blocks": [{"type": "heading", "text": "h"}, {"type": "columns", "columns": [
                {"blocks": []}, {"blocks": [{"type": "button", "label": "b", "href": "//evil.test"}]}]}]}),
            "blocks[1].columns[1].blocks[0].href",
        ),
    ] {
        let e = error_of(value.clone());
        assert_eq!(e.path, path, "{value}: {e}");
    }
    // Allowed: http(s), mailto: for links, a bare address in angle brackets, and tags.
    let design = parse(&json!({"blocks": [
        {"type": "text", "text": "<mail@brand.test> [stop]([UNSUBSCRIBE_URL]) <https://brand.test>"},
        {"type": "button", "label": "x", "href": "MAILTO:hello@brand.test"},
        {"type": "image", "src": "[LOGO_URL|https://brand.test/l.png]"},
    ]}))
    .expect("valid");
    let html = render(&design, "en");
    assert!(html.contains("href=\"mailto:mail@brand.test\""));
    assert!(html.contains("href=\"[UNSUBSCRIBE_URL]\""));
    assert!(html.contains("href=\"https://brand.test\""));
}

#[test]
fn the_shape_is_checked_with_the_place_of_each_problem() {
    for (value, path, words) in [
        (json!({"blocks": []}), "blocks", "at least one"),
        (json!({"blokcs": []}), "blokcs", "unknown field"),
        (
            json!({"blocks": [{"type": "video", "src": "x"}]}),
            "blocks[0].type",
            "not a block",
        ),
        (
            json!({"blocks": [{"type": "text", "text": "x", "size": 3}]}),
            "blocks[0].size",
            "unknown field",
        ),
        (
            json!({"blocks": [{"type": "text", "text": "  "}]}),
            "blocks[0].text",
            "empty",
        ),
        (
            json!({"blocks": [{"type": "heading", "text": "x", "level": 4}]}),
            "blocks[0].level",
            "1, 2 or 3",
        ),
        (
            json!({"blocks": [{"type": "divider", "color": "red"}]}),
            "blocks[0].color",
            "colour",
        ),
        (
            json!({"style": {"width": 2000}, "blocks": [{"type": "spacer", "height": 8}]}),
            "style.width",
            "320 to 900",
        ),
        (
            json!({"blocks": [{"type": "spacer", "height": 1}]}),
            "blocks[0].height",
            "4 to 200",
        ),
        (
            json!({"blocks": [{"type": "columns", "columns": [{"blocks": []}]}]}),
            "blocks[0].columns",
            "2 or 3",
        ),
        (
            json!({"blocks": [{"type": "columns", "columns": [{"blocks": [{"type": "columns", "columns": []}]}, {"blocks": []}]}]}),
            "blocks[0].columns[0].blocks[0]",
            "inside columns",
        ),
        (
            json!({"blocks": [{"type": "columns", "columns": [{"blocks": []}, {"blocks": [{"type": "footer", "unsubscribe": "x"}]}]}]}),
            "blocks[0].columns[1].blocks[0]",
            "not in a column",
        ),
        (
            json!({"blocks": [{"type": "footer", "unsubscribe": "x"}, {"type": "footer", "unsubscribe": "y"}]}),
            "blocks",
            "one footer",
        ),
        (
            json!({"blocks": [{"type": "footer", "unsubscribe": ""}]}),
            "blocks[0].unsubscribe",
            "empty",
        ),
    ] {
        let e = error_of(value.clone());
        assert_eq!(e.path, path, "{value}: {e}");
        assert!(e.problem.contains(words), "{value}: {e}");
    }
}

#[test]
fn sizes_are_bounded() {
    let many: Vec<Value> = (0..=MAX_BLOCKS)
        .map(|_| json!({"type": "spacer", "height": 8}))
        .collect();
    assert!(
        error_of(json!({"blocks": many}))
            .problem
            .contains("at most 200")
    );
    let long = "a".repeat(MAX_TEXT + 1);
    assert_eq!(
        error_of(json!({"blocks": [{"type": "text", "text": long}]})).path,
        "blocks[0].text"
    );
    let huge = "a".repeat(MAX_BYTES);
    assert!(
        error_of(json!({"blocks": [{"type": "text", "text": huge}]}))
            .problem
            .contains("bytes")
    );
    let url = format!("https://a.test/{}", "a".repeat(MAX_URL));
    assert_eq!(
        error_of(json!({"blocks": [{"type": "button", "label": "x", "href": url}]})).path,
        "blocks[0].href"
    );
}

#[test]
fn an_image_is_never_wider_than_its_place() {
    let design = parse(&json!({"blocks": [
        {"type": "image", "src": "https://a.test/1.png", "width": 900},
        {"type": "columns", "columns": [
            {"blocks": [{"type": "image", "src": "https://a.test/2.png"}]},
            {"blocks": []}, {"blocks": []}]}
    ]}))
    .expect("valid");
    let html = render(&design, "en");
    // 600 less 24 on each side; a third of it less the gutter.
    assert!(html.contains("width=\"552\""), "{html}");
    assert!(html.contains("width=\"168\""), "{html}");
}

#[test]
fn the_stored_form_reads_back_the_same() {
    let design = parse(&sample()).expect("valid");
    let stored = serde_json::to_value(&design).expect("serialises");
    assert_eq!(parse(&stored).expect("valid again"), design);
    // Colours are kept in lower case, defaults filled in.
    assert_eq!(stored["style"]["link_color"], "#0055aa");
    assert_eq!(stored["style"]["font"], "sans");
}

/// The tags the renderer writes; every `<` of its output opens or closes one of them.
const TAGS: [&str; 23] = [
    "!DOCTYPE",
    "html",
    "head",
    "meta",
    "title",
    "body",
    "table",
    "tr",
    "td",
    "h1",
    "h2",
    "h3",
    "p",
    "a",
    "img",
    "strong",
    "em",
    "ul",
    "ol",
    "li",
    "blockquote",
    "pre",
    "code",
];

fn only_known_tags(html: &str) -> Result<(), String> {
    for (at, _) in html.match_indices('<') {
        let rest = html[at + 1..].trim_start_matches('/');
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '!')
            .collect();
        if !(TAGS.contains(&name.as_str()) || name == "br" || name == "hr") {
            return Err(format!("unexpected <{name} at {at}"));
        }
    }
    Ok(())
}

fn balanced(html: &str, tag: &str) -> bool {
    html.matches(&format!("<{tag} ")).count() + html.matches(&format!("<{tag}>")).count()
        == html.matches(&format!("</{tag}>")).count()
}

fn text_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 <>&\"'*_\\[\\]()\n#`!|-]{0,80}",
        Just("[FNAME|ami] **bold** [link](https://a.test)".to_owned()),
        Just("<script>alert(1)</script>".to_owned()),
    ]
}

fn url_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        "https://[a-z]{1,8}\\.test/[a-z0-9?=&]{0,10}",
        Just("javascript:alert(1)".to_owned()),
        Just("[UNSUBSCRIBE_URL]".to_owned()),
        "[a-z:/\"<> ]{0,20}",
    ]
}

fn leaf_strategy() -> impl Strategy<Value = Value> {
    prop_oneof![
        text_strategy().prop_map(|t| json!({"type": "text", "text": t})),
        (text_strategy(), 0u8..5)
            .prop_map(|(t, l)| json!({"type": "heading", "text": t, "level": l})),
        (
            url_strategy(),
            text_strategy(),
            proptest::option::of(url_strategy())
        )
            .prop_map(|(s, a, h)| json!({"type": "image", "src": s, "alt": a, "href": h})),
        (text_strategy(), url_strategy())
            .prop_map(|(l, h)| json!({"type": "button", "label": l, "href": h})),
        (0u8..12).prop_map(|t| json!({"type": "divider", "thickness": t})),
        (0u16..300).prop_map(|h| json!({"type": "spacer", "height": h})),
    ]
}

fn block_strategy() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => leaf_strategy(),
        1 => proptest::collection::vec(proptest::collection::vec(leaf_strategy(), 0..3), 1..4)
            .prop_map(|cols| json!({"type": "columns", "columns": cols.into_iter().map(|b| json!({"blocks": b})).collect::<Vec<_>>()})),
        1 => (text_strategy(), text_strategy()).prop_map(|(t, u)| json!({"type": "footer", "text": t, "unsubscribe": u})),
    ]
}

proptest! {
    #[test]
    fn whatever_is_accepted_renders_to_known_balanced_markup(
        blocks in proptest::collection::vec(block_strategy(), 0..8),
        rtl in any::<bool>(),
    ) {
        let value = json!({"blocks": blocks});
        if let Ok(design) = parse(&value) {
            let html = render(&design, if rtl { "ar" } else { "de" });
            prop_assert!(only_known_tags(&html).is_ok(), "{:?}\n{html}", only_known_tags(&html));
            for tag in ["table", "tr", "td", "a", "p", "ul", "ol", "li", "strong", "em"] {
                prop_assert!(balanced(&html, tag), "<{tag}> unbalanced in {html}");
            }
            prop_assert!(!html.contains("javascript:"));
            let again = serde_json::to_value(&design).expect("serialises");
            prop_assert_eq!(parse(&again).expect("valid again"), design);
        }
    }

    #[test]
    fn any_json_is_read_or_refused_without_a_panic(text in ".{0,200}") {
        if let Ok(value) = serde_json::from_str::<Value>(&text) {
            let _ = parse(&value);
        }
        let _ = parse(&json!({"blocks": [{"type": "text", "text": text}]}));
    }
}
