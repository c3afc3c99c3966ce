//! Test sends: a campaign's template (or a template of its own, from the editor)
//! rendered for a chosen contact (or none: the variables' fallbacks) and sent to the
//! addresses given, marked as a test (`X-Campaign-Test`, `X-Template-Test`) and kept out
//! of the campaign's ledger and statistics.

use std::collections::BTreeMap;

use ee_store::campaigns::Campaign;
use ee_store::contacts::Contact;
use ee_store::{Scope, templates};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Services;
use crate::campaigns::messages::queue_with_fallback;
use crate::delivery::{QueueError, invalid};
use crate::queue::messages::SendRequest;

/// The most addresses one test send goes to.
pub const MAX_ADDRESSES: usize = 10;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestSend {
    /// Where the test goes: 1 to 10 addresses.
    pub emails: Vec<String>,
    /// A contact of the tenant whose fields fill the template (and choose its language).
    pub contact_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TestMessage {
    pub email: String,
    pub message_id: String,
    /// queued, or suppressed (the address is on the suppression list).
    pub state: String,
}

/// The values a sample contact brings, as the caller's variables (the system's own are
/// the test message's).
fn sample_values(contact: Option<&Contact>, now: i64) -> BTreeMap<String, String> {
    let mut values = crate::campaigns::rendering::recipient_values(
        contact,
        &BTreeMap::new(),
        String::new(),
        now,
    );
    for system in ["UNSUBSCRIBE_URL", "CURRENT_YEAR", "EMAIL"] {
        values.remove(system);
    }
    values
}

/// Queues the test messages of a campaign the caller may see (found by the door).
pub async fn send(
    services: &Services,
    campaign: &Campaign,
    input: TestSend,
) -> Result<Vec<TestMessage>, QueueError> {
    check_addresses(&input)?;
    let Some(template_id) = &campaign.template_id else {
        return Err(invalid("template_id", "the campaign has no template"));
    };
    let template = template_of(services, &campaign.tenant_id, template_id)
        .await?
        .ok_or_else(|| invalid("template_id", "the campaign's template no longer exists"))?;
    // The recipient's language picks the template of the category, as in the send.
    let sent = Test {
        template: &template,
        exact: false,
        header: ("X-Campaign-Test", &campaign.id),
    };
    sent.send(services, input).await
}

/// Queues the test messages of a template the caller may see (found by the door): this
/// template as it is saved, whatever the sample contact's language, marked
/// `X-Template-Test`.
pub async fn send_template(
    services: &Services,
    template: &templates::Template,
    input: TestSend,
) -> Result<Vec<TestMessage>, QueueError> {
    check_addresses(&input)?;
    let sent = Test {
        template,
        exact: true,
        header: ("X-Template-Test", &template.id),
    };
    sent.send(services, input).await
}

fn check_addresses(input: &TestSend) -> Result<(), QueueError> {
    if input.emails.is_empty() || input.emails.len() > MAX_ADDRESSES {
        return Err(invalid("emails", "give 1 to 10 addresses"));
    }
    Ok(())
}

async fn template_of(
    services: &Services,
    tenant_id: &str,
    id: &str,
) -> Result<Option<templates::Template>, QueueError> {
    let mut conn = services
        .db
        .pool()
        .acquire()
        .await
        .map_err(ee_store::StoreError::from)?;
    match templates::get(&mut conn, id, Scope::Tenant(tenant_id)).await {
        Ok(t) => Ok(Some(t)),
        Err(ee_store::StoreError::NotFound) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A test of a template: the template, whether it is sent as it is (a template's own
/// test) or chosen by the sample's language in its category (a campaign's), and the
/// header that marks it.
struct Test<'a> {
    template: &'a templates::Template,
    exact: bool,
    header: (&'static str, &'a str),
}

impl Test<'_> {
    async fn send(
        &self,
        services: &Services,
        input: TestSend,
    ) -> Result<Vec<TestMessage>, QueueError> {
        let template = self.template;
        let contact = match &input.contact_id {
            Some(id) => {
                let mut conn = services
                    .db
                    .pool()
                    .acquire()
                    .await
                    .map_err(ee_store::StoreError::from)?;
                Some(
                    ee_store::contacts::get(&mut conn, id, Scope::Tenant(&template.tenant_id))
                        .await
                        .map_err(|_| invalid("contact_id", "is not a contact of the tenant"))?,
                )
            }
            None => None,
        };
        let now = services.clock.now_ms();
        let language = contact.as_ref().and_then(|c| c.language.clone());
        let mut headers = BTreeMap::new();
        headers.insert(self.header.0.to_owned(), self.header.1.to_owned());
        let by_category = !self.exact && template.category.is_some();
        let mut sent = Vec::new();
        for email in input.emails {
            let request = SendRequest {
                tenant_id: template.tenant_id.clone(),
                kind: ee_core::delivery::MessageKind::Test,
                to_email: email.clone(),
                template: (!by_category).then(|| template.id.clone()),
                category: template.category.clone().filter(|_| by_category),
                language: if self.exact {
                    Some(template.language.clone())
                } else {
                    language.clone()
                },
                variables: sample_values(contact.as_ref(), now),
                headers: headers.clone(),
                ..Default::default()
            };
            // The same fallbacks as the send: the test shows what a recipient would get.
            let (message, _) = queue_with_fallback(services, request, Some(&template.id))
                .await
                .map_err(|e| match e {
                    QueueError::Invalid {
                        field: "to",
                        message,
                        ..
                    } => invalid("emails", message),
                    other => other,
                })?;
            sent.push(TestMessage {
                email,
                message_id: message.id,
                state: message.state.as_str().to_owned(),
            });
        }
        Ok(sent)
    }
}
