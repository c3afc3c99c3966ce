//! Writing the audit log from handlers, inside the transaction of the change itself.

use ee_store::AnyConnection;

use crate::auth::Principal;
use crate::error::ApiError;
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

pub async fn record(
    conn: &mut AnyConnection,
    actor: &Actor,
    meta: &RequestMeta,
    change: Change<'_>,
    now: i64,
) -> Result<(), ApiError> {
    let caller = Caller {
        actor: actor.clone(),
        origin: meta.origin(),
    };
    ee_app::audit::record(conn, &caller, change, now).await?;
    Ok(())
}
