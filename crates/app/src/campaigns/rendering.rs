//! Templates meet recipients: the values a message is rendered with, the template chosen
//! by category and language, and rendering itself.

use std::collections::BTreeMap;

use ee_core::rendering::Recipient;
pub use ee_core::rendering::{Rendered, declared_variables, describe};
use ee_core::template::{self, Candidate};
use ee_store::{StoreError, contacts as contact_store, templates};
use serde_json::json;

use crate::delivery::*;

/// What a stored contact brings to a template.
fn recipient(contact: &contact_store::Contact) -> Recipient<'_> {
    Recipient {
        email: &contact.email,
        first_name: contact.first_name.as_deref(),
        last_name: contact.last_name.as_deref(),
        company: contact.company.as_deref(),
        phone: contact.phone.as_deref(),
        city: contact.city.as_deref(),
        country: contact.country.as_deref(),
        language: contact.language.as_deref(),
        address: contact.address.as_deref(),
        custom: &contact.metadata,
    }
}

/// The values of a recipient's variables (`ee_core::rendering::recipient_values`) for a
/// stored contact.
pub fn recipient_values(
    contact: Option<&contact_store::Contact>,
    given: &BTreeMap<String, String>,
    unsubscribe_url: String,
    now: i64,
) -> BTreeMap<String, String> {
    let recipient = contact.map(recipient);
    ee_core::rendering::recipient_values(recipient.as_ref(), given, unsubscribe_url, now)
}

/// The values of a preview without a contact: a made-up recipient named in `language`
/// (`ee_core::rendering::sample_recipient`), the caller's values over them.
pub fn sample_values(
    language: &str,
    given: &BTreeMap<String, String>,
    unsubscribe_url: String,
    now: i64,
) -> BTreeMap<String, String> {
    let sample = ee_core::rendering::sample_recipient(language);
    ee_core::rendering::recipient_values(Some(&sample), given, unsubscribe_url, now)
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

/// Renders a message (`ee_core::rendering::render`); a template's problems refuse it
/// with a 422 naming `template`.
pub fn render(
    subject: &str,
    html: Option<&str>,
    text: Option<&str>,
    language: &str,
    declared: &BTreeMap<String, Option<String>>,
    values: &BTreeMap<String, String>,
) -> Result<Rendered, QueueError> {
    ee_core::rendering::render(subject, html, text, language, declared, values).map_err(
        |problems| QueueError::Invalid {
            field: "template",
            message: describe(&problems),
            details: json!({
                "unknown_variables": problems.unknown,
                "syntax": problems.syntax.iter().map(|(p, m)| json!({"part": p, "error": m})).collect::<Vec<_>>(),
            }),
        },
    )
}
