//! Deferred messages tried again now instead of at their next scheduled attempt: one, or
//! every one a filter matches.

use ee_store::Scope;
use ee_store::message_queries::{self, MessageFilter};
use ee_store::messages::{self, Message};
use serde_json::json;

use crate::AppError;
use crate::audit::Change;
use crate::write::Write;

/// Makes a deferred message the caller may see due now; returns it as it is then.
pub async fn retry(w: &mut Write, id: &str) -> Result<Message, AppError> {
    let now = w.now;
    let message = messages::get(&mut w.tx, id, Scope::from(w.scope.as_deref()))
        .await
        .map_err(AppError::from_store("message"))?;
    let filter = MessageFilter {
        tenant_id: Some(&message.tenant_id),
        ..Default::default()
    };
    let retried = message_queries::retry_deferred(&mut w.tx, &filter, Some(id), 1, now).await?;
    if retried.is_empty() {
        return Err(AppError::Conflict(format!(
            "only a deferred message can be retried; this one is {}",
            message.state.as_str()
        )));
    }
    w.record(Change {
        action: "message.retry",
        resource_type: "message",
        resource_id: Some(id),
        tenant_id: Some(&message.tenant_id),
        before: Some(json!({"next_attempt_at": message.next_attempt_at})),
        after: Some(json!({"next_attempt_at": now})),
    })
    .await?;
    Ok(messages::get(&mut w.tx, id, Scope::All).await?)
}

/// Makes up to `limit` deferred messages matching `filter` due now, oldest first;
/// returns their ids. The filter's tenant must be within the caller's scope.
pub async fn retry_many(
    w: &mut Write,
    filter: &MessageFilter<'_>,
    limit: i64,
) -> Result<Vec<String>, AppError> {
    let now = w.now;
    let ids = message_queries::retry_deferred(&mut w.tx, filter, None, limit, now).await?;
    w.record(Change {
        action: "message.retry_many",
        resource_type: "message",
        resource_id: None,
        tenant_id: filter.tenant_id,
        before: None,
        after: Some(json!({"retried": ids.len(), "next_attempt_at": now})),
    })
    .await?;
    Ok(ids)
}
