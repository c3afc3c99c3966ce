//! Templates meet recipients, without I/O: the values a message is rendered with, the
//! variables a template declares, rendering itself, and the one-line account of what is
//! wrong with a template.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::template::{self, Problems, Values};

/// What a recipient brings to a template: its fields and its custom fields.
#[derive(Debug, Clone, Copy, Default)]
pub struct Recipient<'a> {
    pub email: &'a str,
    pub first_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    pub company: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub city: Option<&'a str>,
    pub country: Option<&'a str>,
    pub language: Option<&'a str>,
    pub address: Option<&'a str>,
    /// The custom fields, as the JSON object stored with the contact.
    pub custom: &'a str,
}

impl Recipient<'_> {
    /// The recipient's own values: custom fields by their upper-case name (a value that
    /// is not text shown as JSON, null left out), then the standard fields over them.
    fn values(&self) -> BTreeMap<String, String> {
        let mut values = BTreeMap::new();
        if let Ok(Value::Object(custom)) = serde_json::from_str::<Value>(self.custom) {
            for (key, value) in custom {
                let shown = match value {
                    Value::String(s) => s,
                    Value::Null => continue,
                    other => other.to_string(),
                };
                values.insert(key.to_ascii_uppercase(), shown);
            }
        }
        let fields = [
            ("EMAIL", Some(self.email)),
            ("FNAME", self.first_name),
            ("LNAME", self.last_name),
            ("COMPANY", self.company),
            ("PHONE", self.phone),
            ("CITY", self.city),
            ("COUNTRY", self.country),
            ("LANGUAGE", self.language),
            ("ADDRESS", self.address),
        ];
        for (name, value) in fields {
            if let Some(v) = value {
                values.insert(name.to_owned(), v.to_owned());
            }
        }
        values
    }
}

/// A made-up recipient for previews without a contact, named as one would be in the
/// template's language (English for a language without its own).
pub fn sample_recipient(language: &str) -> Recipient<'_> {
    let (first_name, last_name, city, country) = match language {
        "fr" => ("Marie", "Dupont", "Lyon", "FR"),
        "es" => ("María", "García", "Sevilla", "ES"),
        "de" => ("Anna", "Müller", "Hamburg", "DE"),
        "pt" => ("Ana", "Silva", "Porto", "PT"),
        "ru" => ("Анна", "Иванова", "Казань", "RU"),
        "zh" => ("芳", "王", "成都", "CN"),
        "hi" => ("प्रिया", "शर्मा", "जयपुर", "IN"),
        "ar" => ("فاطمة", "العلي", "الرباط", "MA"),
        _ => ("Jane", "Smith", "Leeds", "GB"),
    };
    Recipient {
        email: "sample@example.com",
        first_name: Some(first_name),
        last_name: Some(last_name),
        company: Some("Example"),
        phone: None,
        city: Some(city),
        country: Some(country),
        language: Some(language),
        address: None,
        custom: "{}",
    }
}

/// The values of a recipient's variables: the recipient's fields and custom fields, the
/// caller's values over them, then the system's (`UNSUBSCRIBE_URL`, `CURRENT_YEAR`),
/// which a caller cannot replace.
pub fn recipient_values(
    recipient: Option<&Recipient<'_>>,
    given: &BTreeMap<String, String>,
    unsubscribe_url: String,
    now: i64,
) -> BTreeMap<String, String> {
    let mut values = recipient.map(Recipient::values).unwrap_or_default();
    for (k, v) in given {
        values.insert(k.to_ascii_uppercase(), v.clone());
    }
    values.insert("UNSUBSCRIBE_URL".into(), unsubscribe_url);
    values.insert(
        "CURRENT_YEAR".into(),
        crate::timefmt::year_of(now).to_string(),
    );
    values
}

/// Declared variables of a template: a JSON object name → default, or a list of names;
/// anything else declares none.
pub fn declared_variables(json: &str) -> BTreeMap<String, Option<String>> {
    match serde_json::from_str::<Value>(json) {
        Ok(Value::Object(map)) => map
            .into_iter()
            .map(|(k, v)| (k, v.as_str().map(str::to_owned)))
            .collect(),
        Ok(Value::Array(names)) => names
            .into_iter()
            .filter_map(|n| n.as_str().map(|s| (s.to_owned(), None)))
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// The rendered parts of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub html: Option<String>,
    pub text: Option<String>,
}

/// Renders subject (on one line), HTML (right to left for Arabic) and text (from the HTML
/// when the template has none); a template with unknown variables or broken tags is
/// refused with its problems.
pub fn render(
    subject: &str,
    html: Option<&str>,
    text: Option<&str>,
    language: &str,
    declared: &BTreeMap<String, Option<String>>,
    values: &BTreeMap<String, String>,
) -> Result<Rendered, Problems> {
    let problems = template::check(
        [
            ("subject", subject),
            ("html", html.unwrap_or("")),
            ("text", text.unwrap_or("")),
        ],
        declared,
    );
    if !problems.is_empty() {
        return Err(problems);
    }
    let v = Values {
        values,
        defaults: declared,
    };
    fn parse(s: &str) -> Vec<template::Segment<'_>> {
        template::parse(s).unwrap_or_default()
    }
    let subject = template::render(&parse(subject), &v, false)
        .replace(['\r', '\n'], " ")
        .trim()
        .to_owned();
    let html = html
        .filter(|h| !h.trim().is_empty())
        .map(|h| template::apply_direction(&template::render(&parse(h), &v, true), language));
    let text = match text.filter(|t| !t.trim().is_empty()) {
        Some(t) => Some(template::render(&parse(t), &v, false)),
        None => html.as_deref().map(template::html_to_text),
    };
    Ok(Rendered {
        subject,
        html,
        text,
    })
}

/// One line naming what is wrong with a template.
pub fn describe(problems: &Problems) -> String {
    let mut parts = Vec::new();
    if !problems.unknown.is_empty() {
        parts.push(format!(
            "unknown variables: {}",
            problems
                .unknown
                .iter()
                .map(|u| format!("[{u}]"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for (part, message) in &problems.syntax {
        parts.push(format!("{part}: {message}"));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_796_000_000_000; // 2026-12-01

    fn jean() -> Recipient<'static> {
        Recipient {
            email: "jean@example.fr",
            first_name: Some("Jean"),
            city: Some("Lyon"),
            custom: r#"{"profile_url": "https://x.test/jean", "score": 7, "gone": null}"#,
            ..Default::default()
        }
    }

    #[test]
    fn a_recipient_brings_fields_and_custom_fields_and_the_system_has_the_last_word() {
        let given = BTreeMap::from([
            ("fname".to_owned(), "Jeannot".to_owned()),
            ("UNSUBSCRIBE_URL".to_owned(), "https://evil.test".to_owned()),
        ]);
        let values = recipient_values(Some(&jean()), &given, "https://u.test/1".into(), NOW);
        assert_eq!(values["EMAIL"], "jean@example.fr");
        assert_eq!(
            values["FNAME"], "Jeannot",
            "the caller's value wins over the field"
        );
        assert_eq!(values["CITY"], "Lyon");
        assert_eq!(values["PROFILE_URL"], "https://x.test/jean");
        assert_eq!(values["SCORE"], "7", "a number is shown as JSON");
        assert!(!values.contains_key("GONE"), "null is left out");
        assert!(
            !values.contains_key("LNAME"),
            "an absent field is not a value"
        );
        assert_eq!(values["UNSUBSCRIBE_URL"], "https://u.test/1");
        assert_eq!(values["CURRENT_YEAR"], "2026");
    }

    #[test]
    fn no_recipient_still_gets_the_system_values() {
        let values = recipient_values(None, &BTreeMap::new(), "u".into(), NOW);
        assert_eq!(
            values.keys().collect::<Vec<_>>(),
            ["CURRENT_YEAR", "UNSUBSCRIBE_URL"]
        );
    }

    #[test]
    fn declared_variables_read_an_object_a_list_or_nothing() {
        assert_eq!(
            declared_variables(r#"{"PROFILE_URL": "https://d.test", "CODE": null}"#),
            BTreeMap::from([
                ("CODE".to_owned(), None),
                ("PROFILE_URL".to_owned(), Some("https://d.test".to_owned())),
            ])
        );
        assert_eq!(
            declared_variables(r#"["CODE", 3]"#),
            BTreeMap::from([("CODE".to_owned(), None)])
        );
        assert!(declared_variables("not json").is_empty());
    }

    #[test]
    fn rendering_fills_values_and_defaults_and_derives_the_text() {
        let declared = declared_variables(r#"{"PROFILE_URL": "https://d.test"}"#);
        let values = recipient_values(None, &BTreeMap::new(), "https://u.test".into(), NOW);
        let out = render(
            "Bonjour\r\n[FNAME]",
            Some("<p>Voir [PROFILE_URL]</p><a href=\"[UNSUBSCRIBE_URL]\">stop</a>"),
            None,
            "fr",
            &declared,
            &values,
        )
        .unwrap();
        assert!(!out.subject.contains(['\r', '\n']), "{}", out.subject);
        assert!(out.subject.starts_with("Bonjour"), "{}", out.subject);
        let html = out.html.unwrap();
        assert!(
            html.contains("https://d.test") && html.contains("https://u.test"),
            "{html}"
        );
        assert!(out.text.unwrap().contains("Voir https://d.test"));
    }

    #[test]
    fn arabic_is_written_right_to_left() {
        let values = BTreeMap::new();
        let out = render(
            "s",
            Some("<p>مرحبا</p>"),
            None,
            "ar",
            &BTreeMap::new(),
            &values,
        )
        .unwrap();
        assert!(out.html.unwrap().contains("rtl"));
        let fr = render(
            "s",
            Some("<p>Salut</p>"),
            None,
            "fr",
            &BTreeMap::new(),
            &values,
        )
        .unwrap();
        assert!(!fr.html.unwrap().contains("rtl"));
    }

    #[test]
    fn unknown_variables_are_refused_and_described() {
        let problems = render(
            "Hi [NICKNAME]",
            Some("<p>[FNAME] [TOWN]</p>"),
            None,
            "en",
            &BTreeMap::new(),
            &BTreeMap::new(),
        )
        .unwrap_err();
        let line = describe(&problems);
        assert!(line.starts_with("unknown variables:"), "{line}");
        assert!(
            line.contains("[NICKNAME]") && line.contains("[TOWN]"),
            "{line}"
        );
        assert!(!line.contains("[FNAME]"), "FNAME is standard: {line}");
    }
}
