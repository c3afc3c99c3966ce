//! Templates meet recipients: the values a message is rendered with, the template chosen
//! by category and language, and rendering itself.

use std::collections::BTreeMap;

use ee_core::template::{self, Candidate, Values};
use ee_store::{StoreError, contacts as contact_store, templates};
use serde_json::{Value, json};

use crate::delivery::*;

fn contact_values(contact: &contact_store::Contact) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    if let Ok(Value::Object(custom)) = serde_json::from_str::<Value>(&contact.metadata) {
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
        ("EMAIL", Some(&contact.email)),
        ("FNAME", contact.first_name.as_ref()),
        ("LNAME", contact.last_name.as_ref()),
        ("COMPANY", contact.company.as_ref()),
        ("PHONE", contact.phone.as_ref()),
        ("CITY", contact.city.as_ref()),
        ("COUNTRY", contact.country.as_ref()),
        ("LANGUAGE", contact.language.as_ref()),
        ("ADDRESS", contact.address.as_ref()),
    ];
    for (name, value) in fields {
        if let Some(v) = value {
            values.insert(name.to_owned(), v.clone());
        }
    }
    values
}

/// The values of a recipient's variables: the contact's fields and custom fields, the
/// caller's values over them, then the system's (`UNSUBSCRIBE_URL`, `CURRENT_YEAR`),
/// which a caller cannot replace.
pub fn recipient_values(
    contact: Option<&contact_store::Contact>,
    given: &BTreeMap<String, String>,
    unsubscribe_url: String,
    now: i64,
) -> BTreeMap<String, String> {
    let mut values = contact.map(contact_values).unwrap_or_default();
    for (k, v) in given {
        values.insert(k.to_ascii_uppercase(), v.clone());
    }
    values.insert("UNSUBSCRIBE_URL".into(), unsubscribe_url);
    values.insert(
        "CURRENT_YEAR".into(),
        ee_core::timefmt::year_of(now).to_string(),
    );
    values
}

/// A tenant's active template for a language and category, by seed 000 §4.3's fallback:
/// category + language, the language's general one, then the English general one.
pub async fn select_template(
    conn: &mut ee_store::AnyConnection,
    tenant_id: &str,
    language: &str,
    category: Option<&str>,
) -> Result<Option<(templates::Template, template::Level)>, StoreError> {
    let all = templates::list(
        conn,
        &templates::Filter {
            tenant_id: Some(tenant_id),
            active: true,
            ..Default::default()
        },
    )
    .await?;
    let candidates: Vec<Candidate<'_>> = all
        .iter()
        .map(|t| Candidate {
            id: &t.id,
            category: t.category.as_deref(),
            language: &t.language,
        })
        .collect();
    let Some((id, level)) = template::select(&candidates, language, category) else {
        return Ok(None);
    };
    let id = id.to_owned();
    Ok(all.into_iter().find(|t| t.id == id).map(|t| (t, level)))
}

/// Declared variables of a template: a JSON object name → default, or a list of names.
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

/// Renders subject, HTML (right to left for Arabic) and text (from the HTML when the
/// template has none).
pub fn render(
    subject: &str,
    html: Option<&str>,
    text: Option<&str>,
    language: &str,
    declared: &BTreeMap<String, Option<String>>,
    values: &BTreeMap<String, String>,
) -> Result<Rendered, QueueError> {
    let problems = template::check(
        [
            ("subject", subject),
            ("html", html.unwrap_or("")),
            ("text", text.unwrap_or("")),
        ],
        declared,
    );
    if !problems.is_empty() {
        return Err(QueueError::Invalid {
            field: "template",
            message: describe(&problems),
            details: json!({
                "unknown_variables": problems.unknown,
                "syntax": problems.syntax.iter().map(|(p, m)| json!({"part": p, "error": m})).collect::<Vec<_>>(),
            }),
        });
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
pub fn describe(problems: &template::Problems) -> String {
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
