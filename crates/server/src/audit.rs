//! Writing the audit log from handlers, inside the transaction of the change itself.

use ee_store::AnyConnection;
use ee_store::audit::{self, NewAuditEntry};
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::RequestMeta;

pub use ee_core::auth::Actor;

impl From<&Principal> for Actor {
    fn from(p: &Principal) -> Self {
        Self {
            kind: p.kind,
            id: Some(p.id.clone()),
            label: Some(p.label.clone()),
        }
    }
}

/// One change to record.
pub struct Change<'a> {
    pub action: &'a str,
    pub resource_type: &'a str,
    pub resource_id: Option<&'a str>,
    pub tenant_id: Option<&'a str>,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

pub async fn record(
    conn: &mut AnyConnection,
    actor: &Actor,
    meta: &RequestMeta,
    change: Change<'_>,
    now: i64,
) -> Result<(), ApiError> {
    let redact = |v: Option<Value>| v.map(|v| ee_core::audit::redact(&v)).unwrap_or(Value::Null);
    let changes = json!({ "before": redact(change.before), "after": redact(change.after) });
    let entry = NewAuditEntry {
        actor_type: actor.kind.as_str().to_owned(),
        actor_id: actor.id.clone(),
        actor_label: actor.label.clone(),
        tenant_id: change.tenant_id.map(str::to_owned),
        action: change.action.to_owned(),
        resource_type: change.resource_type.to_owned(),
        resource_id: change.resource_id.map(str::to_owned),
        changes: changes.to_string(),
        ip_address: meta.ip.clone(),
        user_agent: meta.user_agent.clone(),
        request_id: meta.request_id.clone(),
    };
    audit::insert(conn, entry, now).await?;
    Ok(())
}
