//! How a campaign's message is queued: its template chosen per recipient language, and
//! the fallbacks that make a campaign reach every recipient of its audience.

use ee_store::Scope;
use ee_store::campaigns::Campaign;
use ee_store::templates;

use crate::queue::messages::{SendRequest, queue};
use crate::{AppError, Services};

/// How a message names its template: by category (each recipient gets the template of
/// that category in their language when the tenant has one: the fallback chain), or by
/// id when the template has no category or no longer exists (the queue then says so).
pub async fn template_choice(
    services: &Services,
    campaign: &Campaign,
    template_id: &str,
) -> Result<(Option<String>, Option<String>), AppError> {
    let mut conn = services.db.pool().acquire().await?;
    Ok(
        match templates::get(&mut conn, template_id, Scope::Tenant(&campaign.tenant_id)).await {
            Ok(t) => match t.category {
                Some(category) => (None, Some(category)),
                None => (Some(t.id), None),
            },
            Err(_) => (Some(template_id.to_owned()), None),
        },
    )
}

/// Queues a recipient's message. When the tenant's fallback chain (the category in the
/// recipient's language, their language's general template, the English general one)
/// finds nothing, the category in English is tried, then the campaign's own template:
/// a campaign reaches every recipient of its audience.
pub async fn queue_with_fallback(
    services: &Services,
    request: SendRequest,
    own_template: Option<&str>,
) -> Result<(ee_store::messages::Message, bool), crate::delivery::QueueError> {
    use crate::delivery::QueueError::NotFound;
    if request.category.is_none() {
        return queue(services, request).await;
    }
    let english = SendRequest {
        language: Some(ee_core::template::DEFAULT_LANGUAGE.into()),
        ..request.clone()
    };
    let own = SendRequest {
        category: None,
        template: own_template.map(str::to_owned),
        ..request.clone()
    };
    match queue(services, request).await {
        Err(NotFound("template")) => match queue(services, english).await {
            Err(NotFound("template")) => queue(services, own).await,
            other => other,
        },
        other => other,
    }
}
