//! The audit log: who made a change, from where, and what it was, written in the
//! transaction of the change itself, whichever door (API, CLI, worker, webhook) made it;
//! read back by administrators (`log`).
pub mod log;

use ee_store::AnyConnection;
use ee_store::audit::NewAuditEntry;
use serde_json::{Value, json};

pub use ee_core::auth::{Actor, ActorKind};

/// Where a request came from: the client's address, user agent and request id.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

/// Who is acting, and from where.
#[derive(Debug, Clone)]
pub struct Caller {
    pub actor: Actor,
    pub origin: Origin,
}

impl Caller {
    /// The command line, as the user running it.
    pub fn cli() -> Self {
        let who = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
        Self {
            actor: Actor {
                kind: ActorKind::Cli,
                id: None,
                label: Some(format!("cli:{who}")),
            },
            origin: Origin::default(),
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

/// Writes the audit entry of `change` on `conn`, which should be the change's own
/// transaction; secrets in `before` and `after` are redacted.
pub async fn record(
    conn: &mut AnyConnection,
    caller: &Caller,
    change: Change<'_>,
    now: i64,
) -> Result<(), ee_store::StoreError> {
    let redact = |v: Option<Value>| v.map(|v| ee_core::audit::redact(&v)).unwrap_or(Value::Null);
    let changes = json!({ "before": redact(change.before), "after": redact(change.after) });
    let entry = NewAuditEntry {
        actor_type: caller.actor.kind.as_str().to_owned(),
        actor_id: caller.actor.id.clone(),
        actor_label: caller.actor.label.clone(),
        tenant_id: change.tenant_id.map(str::to_owned),
        action: change.action.to_owned(),
        resource_type: change.resource_type.to_owned(),
        resource_id: change.resource_id.map(str::to_owned),
        changes: changes.to_string(),
        ip_address: caller.origin.ip.clone(),
        user_agent: caller.origin.user_agent.clone(),
        request_id: caller.origin.request_id.clone(),
    };
    ee_store::audit::insert(conn, entry, now).await?;
    Ok(())
}
