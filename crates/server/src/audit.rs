//! Who makes a change through the API, as the audit log and the use-cases take it.

use crate::auth::Principal;
use crate::extract::RequestMeta;

pub use ee_app::audit::{Actor, Caller, Change};

impl From<&Principal> for Actor {
    fn from(p: &Principal) -> Self {
        Self {
            kind: p.kind,
            id: Some(p.id.clone()),
            label: Some(p.label.clone()),
        }
    }
}

/// The caller of a request, as the use-cases take it.
pub fn caller(principal: &Principal, meta: &RequestMeta) -> Caller {
    Caller {
        actor: Actor::from(principal),
        origin: meta.origin(),
    }
}
