use axum::Json;
use axum::extract::State;
use ee_app::audit::log::{self as audit, AuditEntry, AuditFilter};
use ee_core::timefmt::to_rfc3339;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::parse_time;
use crate::auth::Principal;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::ApiQuery;
use crate::read::{Read, Reading};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntryOut {
    pub id: String,
    pub created_at: String,
    /// `user`, `api_key`, `cli`, `system` or `anonymous`.
    pub actor_type: ee_core::auth::ActorKind,
    pub actor_id: Option<String>,
    pub actor_label: Option<String>,
    pub tenant_id: Option<String>,
    pub action: String,
    pub resource_type: String,
    pub resource_id: Option<String>,
    /// The resource before the change (null for a creation).
    #[schema(value_type = Option<Object>)]
    pub before: Value,
    /// The resource after the change (null for a deletion).
    #[schema(value_type = Option<Object>)]
    pub after: Value,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

impl From<AuditEntry> for AuditEntryOut {
    fn from(e: AuditEntry) -> Self {
        let changes: Value = serde_json::from_str(&e.changes).unwrap_or(Value::Null);
        Self {
            id: e.id,
            created_at: to_rfc3339(e.created_at),
            actor_type: e.actor_type,
            actor_id: e.actor_id,
            actor_label: e.actor_label,
            tenant_id: e.tenant_id,
            action: e.action,
            resource_type: e.resource_type,
            resource_id: e.resource_id,
            before: changes["before"].clone(),
            after: changes["after"].clone(),
            ip_address: e.ip_address,
            user_agent: e.user_agent,
            request_id: e.request_id,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct AuditQuery {
    /// The id of the user or API key that acted.
    pub actor: Option<String>,
    /// e.g. `tenant.create`.
    pub action: Option<String>,
    /// e.g. `tenant`.
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    #[serde(alias = "tenant")]
    pub tenant_id: Option<String>,
    /// RFC 3339, inclusive.
    pub from: Option<String>,
    /// RFC 3339, exclusive.
    pub to: Option<String>,
    /// 1 to 500; 50 when absent.
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The audit log, newest first (admin).
#[utoipa::path(get, path = "/api/v1/audit/logs", tag = "audit", params(AuditQuery),
    responses((status = 200, body = super::List<AuditEntryOut>), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<super::List<AuditEntryOut>>> {
    principal.require_admin()?;
    let before = super::parse_cursor(q.cursor.as_deref())?;
    let limit = super::limit_param(q.limit, 50, 500)?;
    let filter = AuditFilter {
        actor_id: q.actor,
        action: q.action,
        resource_type: q.resource_type,
        resource_id: q.resource_id,
        tenant_id: q.tenant_id,
        from: parse_time(q.from.as_deref(), "from")?,
        to: parse_time(q.to.as_deref(), "to")?,
        before,
        limit,
    };
    let mut read = Read::begin(&state, &principal).await?;
    let rows = audit::list(&mut read, &filter).await?;
    let page = super::List::keyset(rows, limit, |e| format!("{}_{}", e.created_at, e.id));
    Ok(Json(page.map(AuditEntryOut::from)))
}
