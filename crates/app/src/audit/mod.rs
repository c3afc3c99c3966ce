//! The audit log's words: who made a change, from where, and what it was. An entry is
//! written only through `write::Write`, in the transaction of the change itself,
//! whichever door (API, CLI, worker, webhook) made it; read back by administrators
//! (`log`).
pub mod log;

use serde_json::Value;

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
