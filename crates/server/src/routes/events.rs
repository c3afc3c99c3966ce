//! `POST /api/v2/events`: a custom event about a contact, which autoresponders take as a
//! trigger (`event:<name>`) or a goal.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use ee_app::contacts::custom_events::{EventIn, EventOut};

use super::tenant_of;
use crate::auth::Principal;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::ApiJson;
use crate::state::AppState;

#[utoipa::path(post, path = "/api/v2/events", tag = "campaigns", request_body = EventIn,
    responses((status = 202, body = EventOut), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn post(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<EventIn>,
) -> ApiResult<(StatusCode, Json<EventOut>)> {
    let mut conn = state.db.pool().acquire().await?;
    let tenant_id = tenant_of(&mut conn, &principal, body.tenant_id.as_deref()).await?;
    let out =
        ee_app::contacts::custom_events::record(&mut conn, &tenant_id, body, state.now()).await?;
    Ok((StatusCode::ACCEPTED, Json(out)))
}
