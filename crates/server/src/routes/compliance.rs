//! `GET /api/v1/tenants/{id}/compliance`: the bulk-sender rules of Gmail and Yahoo, each
//! green or red with its evidence.

use axum::Json;
use axum::extract::{Path, State};
use ee_app::infra::compliance::Compliance;

use crate::auth::Principal;
use crate::error::{ApiResult, ErrorBody};
use crate::read::{Read, Reading};
use crate::state::AppState;

/// SPF, DKIM, DMARC alignment, forward and reverse DNS, TLS, headers, one-click and
/// visible unsubscribe, unsubscribes honoured, the complaint rate: each green or red
/// with what it rests on (unknown is red).
#[utoipa::path(get, path = "/api/v1/tenants/{id}/compliance", tag = "tenants", params(("id" = String, Path, description = "the tenant's id or slug")),
    responses((status = 200, body = Compliance), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn compliance(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Compliance>> {
    let mut read = Read::begin(&state, &principal).await?;
    let tenant = read.tenant(Some(&id)).await?;
    let view = ee_app::infra::compliance::compliance(
        &mut read,
        &tenant,
        &state.services.delivery.public_url,
        state.now(),
    )
    .await?;
    Ok(Json(view))
}
