//! Ad hoc address validation, and the operator's extra lists (disposable, role, free).

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, RequestMeta};
use crate::read::{Read, Reading};
use crate::state::AppState;
use crate::write::{Begin, Write};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateRequest {
    pub emails: Vec<String>,
    /// Also probe the mail server with RCPT (slow; off by default).
    #[serde(default)]
    pub smtp_probe: bool,
    #[serde(alias = "tenant")]
    pub tenant_id: Option<String>,
}

/// Checks addresses now: syntax, MX (cached), disposable, role, free (and an SMTP probe
/// when asked). Nothing is stored but the MX cache.
#[utoipa::path(post, path = "/api/v1/validation/emails", tag = "contacts", request_body = ValidateRequest,
    responses((status = 200, body = Vec<ee_app::contacts::validation::Validation>), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn validate(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<ValidateRequest>,
) -> ApiResult<Json<Vec<ee_app::contacts::validation::Validation>>> {
    if body.emails.is_empty() || body.emails.len() > 1000 {
        return Err(ApiError::invalid_field(
            "emails",
            "must hold 1 to 1000 addresses",
        ));
    }
    let mut read = Read::begin(&state, &principal).await?;
    let lists = match read.tenant(body.tenant_id.as_deref()).await {
        Ok(tenant_id) => ee_app::contacts::validation::extra_lists(&mut read, &tenant_id).await?,
        Err(_) if principal.is_admin() && body.tenant_id.is_none() => Default::default(),
        Err(e) => return Err(e.into()),
    };
    drop(read);
    let now = state.now();
    let mut out = Vec::with_capacity(body.emails.len());
    for email in &body.emails {
        out.push(
            ee_app::contacts::validation::validate_address(
                &state.services,
                email,
                &lists,
                Default::default(),
                body.smtp_probe,
                now,
            )
            .await
            .map_err(ee_app::AppError::from)?,
        );
    }
    Ok(Json(out))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListEntries {
    /// Domains (disposable, free) or local parts (role) added to the shipped list.
    pub values: Vec<String>,
    #[serde(alias = "tenant")]
    pub tenant_id: Option<String>,
}

/// Replaces the tenant's additions to a shipped list (disposable, free or role).
#[utoipa::path(put, path = "/api/v1/validation/lists/{list}", tag = "contacts", params(("list" = String, Path)), request_body = ListEntries,
    responses((status = 200, body = ListEntries), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn put_list(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(list): Path<String>,
    ApiJson(body): ApiJson<ListEntries>,
) -> ApiResult<Json<ListEntries>> {
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let (tenant_id, values) = ee_app::contacts::validation::set_list(
        &mut w,
        &list,
        body.tenant_id.as_deref(),
        &body.values,
    )
    .await?;
    w.finish().await?;
    Ok(Json(ListEntries {
        values,
        tenant_id: Some(tenant_id),
    }))
}
