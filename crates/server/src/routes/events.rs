//! `POST /api/v2/events`: a custom event about a contact, which autoresponders take as a
//! trigger (`event:<name>`) or a goal.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use ee_app::contacts::custom_events::{EventIn, EventOut};

use crate::auth::Principal;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::ApiJson;
use crate::read::{Read, Reading};
use crate::state::AppState;

#[utoipa::path(post, path = "/api/v2/events", tag = "campaigns", request_body = EventIn,
    responses((status = 202, body = EventOut), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn post(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<EventIn>,
) -> ApiResult<(StatusCode, Json<EventOut>)> {
    let mut read = Read::begin(&state, &principal).await?;
    let tenant_id = read.tenant(body.tenant_id.as_deref()).await?;
    drop(read);
    let out =
        ee_app::contacts::custom_events::record(&state.db, &tenant_id, body, state.now()).await?;
    Ok((StatusCode::ACCEPTED, Json(out)))
}
