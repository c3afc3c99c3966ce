//! Parsing, rendering, selection and the text part of templates.
use super::*;

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn tags_and_text() {
    let s = parse("Bonjour [FNAME|cher ami], a[href] [1] [Note] [EMAIL]").unwrap();
    assert_eq!(
        s,
        vec![
            Segment::Text("Bonjour "),
            Segment::Var {
                name: "FNAME",
                fallback: Some("cher ami")
            },
            Segment::Text(", a[href] [1] [Note] "),
            Segment::Var {
                name: "EMAIL",
                fallback: None
            },
        ]
    );
}

#[test]
fn broken_tags_are_named() {
    let errors = parse("Hello [FNAME, see [LNAME|x\n and [EMAIL").unwrap_err();
    let tags: Vec<String> = errors
        .iter()
        .map(|SyntaxError::Unclosed { tag, .. }| tag.clone())
        .collect();
    assert_eq!(tags, vec!["[FNAME", "[LNAME|", "[EMAIL"]);
}

#[test]
fn unknown_variables_are_reported_unless_declared() {
    let mut declared = BTreeMap::new();
    declared.insert("PROFILE_URL".to_owned(), None);
    let problems = check(
        [
            ("subject", "Hi [FNAME]"),
            ("html", "<a href=\"[PROFILE_URL]\">[PROFIL_URL] [ZIP]</a>"),
        ],
        &declared,
    );
    assert!(problems.syntax.is_empty());
    assert_eq!(
        problems.unknown.into_iter().collect::<Vec<_>>(),
        vec!["PROFIL_URL", "ZIP"]
    );
    let broken = check([("text", "Hi [FNAME")], &declared);
    assert_eq!(broken.syntax.len(), 1);
    assert_eq!(broken.syntax[0].0, "text");
}

#[test]
fn rendering_escapes_recipient_values_and_falls_back() {
    let mut defaults = BTreeMap::new();
    defaults.insert("CITY".to_owned(), Some("votre ville".to_owned()));
    let values = vars(&[("FNAME", "<Jean>"), ("LNAME", "  ")]);
    let v = Values {
        values: &values,
        defaults: &defaults,
    };
    let seg = parse("[FNAME] [LNAME|Dupont] [CITY] [COMPANY]!").unwrap();
    assert_eq!(render(&seg, &v, true), "&lt;Jean&gt; Dupont votre ville !");
    assert_eq!(render(&seg, &v, false), "<Jean> Dupont votre ville !");
}

#[test]
fn arabic_is_right_to_left() {
    assert_eq!(
        apply_direction("<html><body>مرحبا</body></html>", "ar"),
        "<html dir=\"rtl\" lang=\"ar\"><body>مرحبا</body></html>"
    );
    assert_eq!(
        apply_direction("<p>مرحبا</p>", "AR"),
        "<div dir=\"rtl\"><p>مرحبا</p></div>"
    );
    assert_eq!(apply_direction("<p>x</p>", "fr"), "<p>x</p>");
    let given = "<html dir=\"ltr\"><body>x</body></html>";
    assert_eq!(apply_direction(given, "ar"), given);
}

#[test]
fn without_an_english_general_the_categorys_english_template_serves() {
    let c = [
        Candidate {
            id: "welcome_fr",
            category: Some("welcome"),
            language: "fr",
        },
        Candidate {
            id: "welcome_en",
            category: Some("welcome"),
            language: "en",
        },
    ];
    assert_eq!(
        select(&c, "de", Some("welcome")),
        Some(("welcome_en", Level::EnglishCategory))
    );
    assert_eq!(select(&c, "de", Some("news")), None);
    assert_eq!(select(&c, "de", None), None);
    assert_eq!(
        select(&c, "fr", Some("welcome")),
        Some(("welcome_fr", Level::CategoryAndLanguage))
    );
}

#[test]
fn selection_has_three_levels() {
    let c = [
        Candidate {
            id: "fr-blog",
            category: Some("blogger"),
            language: "fr",
        },
        Candidate {
            id: "fr",
            category: None,
            language: "fr",
        },
        Candidate {
            id: "en",
            category: Some("general"),
            language: "en",
        },
        Candidate {
            id: "de-media",
            category: Some("media"),
            language: "de",
        },
    ];
    assert_eq!(
        select(&c, "FR", Some("Blogger")),
        Some(("fr-blog", Level::CategoryAndLanguage))
    );
    assert_eq!(
        select(&c, "fr", Some("media")),
        Some(("fr", Level::LanguageGeneral))
    );
    assert_eq!(
        select(&c, "de", Some("blogger")),
        Some(("en", Level::EnglishGeneral))
    );
    assert_eq!(
        select(&c, "de", Some("media")),
        Some(("de-media", Level::CategoryAndLanguage))
    );
    assert_eq!(select(&c[..1], "de", None), None);
}

#[test]
fn text_from_html() {
    let html = "<html><head><title>T</title><style>p{color:red}</style></head><body>\
        <h1>Bienvenue&nbsp;Jean</h1><p>Votre <b>compte</b> est prêt.</p>\
        <ul><li>Un</li><li>Deux &amp; trois</li></ul>\
        <p><a href=\"https://ex.test/a?x=1&amp;y=2\">Voir</a> ou <a href=\"https://ex.test/b\">https://ex.test/b</a></p>\
        <!-- hidden --><script>alert(1)</script>Fin&#33;</body></html>";
    assert_eq!(
        html_to_text(html),
        "Bienvenue Jean\n\nVotre compte est prêt.\n\n- Un\n- Deux & trois\n\nVoir (https://ex.test/a?x=1&y=2) ou https://ex.test/b\n\nFin!"
    );
}

#[test]
fn languages() {
    assert_eq!(language(" ZH "), Some("zh"));
    assert_eq!(language("it"), None);
    assert!(is_rtl("ar") && !is_rtl("he-not-supported-here") && !is_rtl("fr"));
}
