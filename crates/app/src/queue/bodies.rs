//! Bodies rendered when sent: a campaign message keeps its template's version and its
//! contact, not a rendered body, so a million-recipient campaign stores no million bodies.
//! The delivery engine has the bodies of a claimed batch rendered here, in memory, with
//! each template version read once and the contacts read in one query; the recipient's
//! values are read as they are at send time.

use std::collections::{BTreeMap, HashMap};

use ee_store::messages::Message;
use ee_store::templates::{self, Template};
use ee_store::{AnyConnection, StoreError, contact_batches};

use crate::Services;
use crate::campaigns::rendering::{declared_variables, recipient_values};
use crate::delivery::unsubscribe_url;

/// Renders the bodies of the batch's messages that have none stored. Returns the
/// messages that cannot be rendered (their template version is gone, or does not
/// render), with why: they fail rather than go out empty.
pub async fn render_at_send(
    services: &Services,
    conn: &mut AnyConnection,
    batch: &mut [Message],
    now: i64,
) -> Result<HashMap<String, String>, StoreError> {
    let mut failed = HashMap::new();
    if !batch.iter().any(Message::renders_at_send) {
        return Ok(failed);
    }
    let contact_ids: Vec<String> = batch
        .iter()
        .filter(|m| m.renders_at_send())
        .filter_map(|m| m.contact_id.clone())
        .collect();
    let contacts = contact_batches::get_many(conn, &contact_ids).await?;
    let mut versions: HashMap<(String, i64), Option<Template>> = HashMap::new();
    for message in batch.iter_mut().filter(|m| m.renders_at_send()) {
        let (Some(template_id), Some(version)) =
            (message.template_id.clone(), message.template_version)
        else {
            failed.insert(message.id.clone(), "its template was deleted".into());
            continue;
        };
        let key = (template_id, version);
        if !versions.contains_key(&key) {
            let found = match templates::at_version(conn, &key.0, version).await {
                Ok(t) => Some(t),
                Err(StoreError::NotFound) => None,
                Err(e) => return Err(e),
            };
            versions.insert(key.clone(), found);
        }
        let Some(template) = versions[&key].as_ref() else {
            failed.insert(
                message.id.clone(),
                format!("version {version} of its template is gone"),
            );
            continue;
        };
        let contact = message.contact_id.as_ref().and_then(|c| contacts.get(c));
        let mut values = recipient_values(
            contact,
            &BTreeMap::new(),
            unsubscribe_url(&services.delivery, &message.id),
            now,
        );
        values.insert("EMAIL".into(), message.to_email.clone());
        match ee_core::rendering::render(
            "",
            Some(&template.html_content),
            template.text_content.as_deref(),
            &template.language,
            &declared_variables(&template.variables),
            &values,
        ) {
            Ok(rendered) => {
                message.html = rendered.html;
                message.text_body = rendered.text;
            }
            Err(problems) => {
                failed.insert(
                    message.id.clone(),
                    format!(
                        "its template does not render: {}",
                        ee_core::rendering::describe(&problems)
                    ),
                );
            }
        }
    }
    Ok(failed)
}
