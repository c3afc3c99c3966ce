//! `/api/v2/campaigns`: campaigns created (seed 004's body as written), listed, changed and
//! deleted while draft, moved through their life, their audience counted and their
//! recipient ledger read.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ee_app::campaigns::autoresponders::{ENROLLMENT_STATES, EnrollmentOut};
use ee_app::campaigns::stats::CampaignStats;
use ee_app::campaigns::test_send::{TestMessage, TestSend};
use ee_app::campaigns::view::{self, CampaignFilter, Recipient};
use ee_app::campaigns::{self as app, Campaign, CampaignIn, CampaignOut};
use ee_core::campaign::{CampaignAction, CampaignKind, CampaignStatus, RecipientState};
use ee_core::timefmt::to_rfc3339;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{List, limit_param, parse_cursor};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, RequestMeta};
use crate::read::{Read, Reading};
use crate::state::AppState;
use crate::write::{Begin, Write};

/// Creates a draft campaign.
#[utoipa::path(post, path = "/api/v2/campaigns", tag = "campaigns", request_body = CampaignIn,
    responses((status = 201, body = CampaignOut), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    ApiJson(body): ApiJson<CampaignIn>,
) -> ApiResult<(StatusCode, Json<CampaignOut>)> {
    ee_app::campaigns::rss::check_outbound(&state.services.outbound, body.rss.as_ref())?;
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let tenant_id = w.tenant(body.tenant_id.as_deref()).await?;
    let out = app::create(&mut w, &tenant_id, body).await?;
    w.finish().await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct CampaignQuery {
    /// draft, scheduled, sending, paused, auto_paused, sent or cancelled.
    pub status: Option<String>,
    /// regular, autoresponder or ab_test.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: Option<String>,
    /// An admin names the tenant (slug or id); all tenants when absent.
    #[serde(alias = "tenant")]
    pub tenant_id: Option<String>,
    /// 1 to 500; 50 when absent.
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Campaigns, newest first, filtered; cursor pagination.
#[utoipa::path(get, path = "/api/v2/campaigns", tag = "campaigns", params(CampaignQuery),
    responses((status = 200, body = List<CampaignOut>), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<CampaignQuery>,
) -> ApiResult<Json<List<CampaignOut>>> {
    let status = q
        .status
        .as_deref()
        .map(|s| {
            CampaignStatus::parse(s).ok_or_else(|| {
                ApiError::invalid_field(
                    "status",
                    format!("must be one of {}", CampaignStatus::names()),
                )
            })
        })
        .transpose()?;
    let kind = q
        .kind
        .as_deref()
        .map(|k| {
            CampaignKind::parse(k).ok_or_else(|| {
                ApiError::invalid_field("type", format!("must be one of {}", CampaignKind::names()))
            })
        })
        .transpose()?;
    let limit = limit_param(q.limit, 50, 500)?;
    let mut read = Read::begin(&state, &principal).await?;
    let tenant = match &q.tenant_id {
        Some(_) => Some(read.tenant(q.tenant_id.as_deref()).await?),
        None => None,
    };
    let rows = view::list(
        &mut read,
        tenant.as_deref(),
        &CampaignFilter { status, kind },
        parse_cursor(q.cursor.as_deref())?,
        limit,
    )
    .await?;
    let page = List::keyset(rows, limit, |c| format!("{}_{}", c.created_at, c.id));
    Ok(Json(page.map(CampaignOut::from)))
}

#[utoipa::path(get, path = "/api/v2/campaigns/{id}", tag = "campaigns", params(("id" = String, Path)),
    responses((status = 200, body = CampaignOut), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<CampaignOut>> {
    let mut read = Read::begin(&state, &principal).await?;
    Ok(Json(read.find::<Campaign>(&id).await?.into()))
}

/// Changes a draft campaign (fields left out stay as they are).
#[utoipa::path(patch, path = "/api/v2/campaigns/{id}", tag = "campaigns", params(("id" = String, Path)), request_body = CampaignIn,
    responses((status = 200, body = CampaignOut), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CampaignIn>,
) -> ApiResult<Json<CampaignOut>> {
    ee_app::campaigns::rss::check_outbound(&state.services.outbound, body.rss.as_ref())?;
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let out = app::update(&mut w, &id, body).await?;
    w.finish().await?;
    Ok(Json(out))
}

/// Deletes a draft (or a cancelled campaign that never sent).
#[utoipa::path(delete, path = "/api/v2/campaigns/{id}", tag = "campaigns", params(("id" = String, Path)),
    responses((status = 204, description = "deleted"), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    app::delete(&mut w, &id).await?;
    w.finish().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleIn {
    /// When to start (RFC 3339); the campaign's `send_at` when absent.
    pub send_at: Option<String>,
}

async fn act(
    state: &AppState,
    principal: &Principal,
    meta: &RequestMeta,
    id: &str,
    action: CampaignAction,
    send_at: Option<&str>,
) -> ApiResult<Json<CampaignOut>> {
    let mut w = Write::begin(state, principal, meta, state.now()).await?;
    let out = app::act(&mut w, id, action, send_at).await?;
    w.finish().await?;
    Ok(Json(out))
}

/// Schedules a draft to start at `send_at`.
#[utoipa::path(post, path = "/api/v2/campaigns/{id}/schedule", tag = "campaigns", params(("id" = String, Path)),
    request_body(content = ScheduleIn, description = "optional"),
    responses((status = 200, body = CampaignOut), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn schedule(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<CampaignOut>> {
    let body: ScheduleIn = crate::extract::parse_optional_json(&body)?;
    let action = CampaignAction::Schedule;
    act(
        &state,
        &principal,
        &meta,
        &id,
        action,
        body.send_at.as_deref(),
    )
    .await
}

macro_rules! action_route {
    ($name:ident, $path:literal, $action:expr, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "campaigns", params(("id" = String, Path)),
            responses((status = 200, body = CampaignOut), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
            security(("bearer" = []), ("api_key" = [])))]
        pub async fn $name(
            State(state): State<AppState>,
            principal: Principal,
            meta: RequestMeta,
            Path(id): Path<String>,
        ) -> ApiResult<Json<CampaignOut>> {
            act(&state, &principal, &meta, &id, $action, None).await
        }
    };
}

action_route!(
    start,
    "/api/v2/campaigns/{id}/start",
    CampaignAction::Start,
    "Starts sending now: the audience is fixed (the ledger) and handed over within the throttle."
);
action_route!(
    pause,
    "/api/v2/campaigns/{id}/pause",
    CampaignAction::Pause,
    "Pauses sending: no recipient is handed over and queued messages wait, on every node."
);
action_route!(
    resume,
    "/api/v2/campaigns/{id}/resume",
    CampaignAction::Resume,
    "Resumes where it stopped: no recipient gets a second message, none is skipped."
);
action_route!(
    cancel,
    "/api/v2/campaigns/{id}/cancel",
    CampaignAction::Cancel,
    "Cancels: waiting recipients are cancelled, queued messages not sent fail."
);

#[derive(Debug, Serialize, ToSchema)]
pub struct AudienceCount {
    /// Recipients now (before sending starts) or in the snapshot (after).
    pub count: i64,
    /// Whether the count is the fixed snapshot.
    pub fixed: bool,
}

/// How many recipients the audience holds: shown before sending.
#[utoipa::path(get, path = "/api/v2/campaigns/{id}/audience", tag = "campaigns", params(("id" = String, Path)),
    responses((status = 200, body = AudienceCount), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn audience(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<AudienceCount>> {
    let mut read = Read::begin(&state, &principal).await?;
    let campaign = read.find::<Campaign>(&id).await?;
    let count = app::audience_count(&mut read, &campaign, state.now()).await?;
    Ok(Json(AudienceCount {
        count,
        fixed: campaign.audience_count.is_some(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct RecipientQuery {
    /// pending, queued, sent, deferred, bounced, failed, skipped or cancelled.
    pub state: Option<String>,
    /// 1 to 500; 50 when absent.
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecipientOut {
    pub contact_id: String,
    /// Absent once the contact was erased.
    pub email: Option<String>,
    /// An A/B test's variant.
    pub variant: Option<String>,
    pub state: RecipientState,
    /// Why it was skipped or failed.
    pub detail: Option<String>,
    pub message_id: Option<String>,
    pub last_code: Option<i64>,
    pub last_reply: Option<String>,
    pub queued_at: Option<String>,
    pub sent_at: Option<String>,
    pub updated_at: String,
    /// When its waiting message is tried: the opening of the campaign's window for it.
    pub next_attempt_at: Option<String>,
    /// The recipient's zone: its own, else its country's most populous (absent: the
    /// tenant's zone applies).
    pub time_zone: Option<String>,
    /// When it was sent (or, waiting, when it is tried) on the recipient's clock.
    pub local_time: Option<String>,
}

impl From<Recipient> for RecipientOut {
    fn from(r: Recipient) -> Self {
        let zone = ee_core::zone::recipient_zone(r.time_zone.as_deref(), r.country.as_deref());
        let local_time = zone
            .as_ref()
            .zip(r.sent_at.or(r.next_attempt_at))
            .and_then(|(zone, at)| ee_core::zone::local_rfc3339(at, zone));
        Self {
            time_zone: zone.and_then(|z| z.iana_name().map(str::to_owned)),
            local_time,
            next_attempt_at: r.next_attempt_at.map(to_rfc3339),
            detail: r.detail.or(r.state_reason),
            state: r.state,
            contact_id: r.contact_id,
            email: r.email,
            variant: r.variant,
            message_id: r.message_id,
            last_code: r.last_code,
            last_reply: r.last_reply,
            queued_at: r.queued_at.map(to_rfc3339),
            sent_at: r.sent_at.map(to_rfc3339),
            updated_at: to_rfc3339(r.updated_at),
        }
    }
}

/// The recipient ledger: each recipient's state, message and last reply.
#[utoipa::path(get, path = "/api/v2/campaigns/{id}/recipients", tag = "campaigns", params(("id" = String, Path), RecipientQuery),
    responses((status = 200, body = List<RecipientOut>), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn recipients(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<RecipientQuery>,
) -> ApiResult<Json<List<RecipientOut>>> {
    let recipient_state = q
        .state
        .as_deref()
        .map(|s| {
            RecipientState::parse(s).ok_or_else(|| {
                ApiError::invalid_field(
                    "state",
                    format!("must be one of {}", RecipientState::names()),
                )
            })
        })
        .transpose()?;
    let limit = limit_param(q.limit, 50, 500)?;
    let mut read = Read::begin(&state, &principal).await?;
    let campaign = read.find::<Campaign>(&id).await?;
    let rows = view::recipients(
        &mut read,
        &campaign,
        recipient_state,
        q.cursor.as_deref(),
        limit,
    )
    .await?;
    let page = List::keyset(rows, limit, |r| r.contact_id.clone());
    Ok(Json(page.map(RecipientOut::from)))
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = RecipientRetryOut)]
pub struct RetryOut {
    /// How many failed recipients wait again.
    pub retried: u64,
}

/// Failed recipients are handed over again (a new message each).
#[utoipa::path(post, path = "/api/v2/campaigns/{id}/recipients/retry", tag = "campaigns", params(("id" = String, Path)),
    responses((status = 200, body = RetryOut), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn retry_failed(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
) -> ApiResult<Json<RetryOut>> {
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let retried = app::retry_failed(&mut w, &id).await?;
    w.finish().await?;
    Ok(Json(RetryOut { retried }))
}

/// A campaign's figures: recipients by state, counters and their rates, hour by hour.
#[utoipa::path(get, path = "/api/v2/campaigns/{id}/stats", tag = "campaigns", params(("id" = String, Path)),
    responses((status = 200, body = CampaignStats), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn stats(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<CampaignStats>> {
    let mut read = Read::begin(&state, &principal).await?;
    let campaign = read.find::<Campaign>(&id).await?;
    Ok(Json(
        ee_app::campaigns::stats::stats(&mut read, &campaign).await?,
    ))
}

/// Sends the campaign's template to up to 10 addresses, filled from a chosen contact,
/// marked as a test and kept out of the ledger and the statistics.
#[utoipa::path(post, path = "/api/v2/campaigns/{id}/test", tag = "campaigns", params(("id" = String, Path)),
    request_body = TestSend,
    responses((status = 202, body = Vec<TestMessage>), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn test_send(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<TestSend>,
) -> ApiResult<(StatusCode, Json<Vec<TestMessage>>)> {
    let mut read = Read::begin(&state, &principal).await?;
    let campaign = read.find::<Campaign>(&id).await?;
    drop(read);
    let sent = ee_app::campaigns::test_send::send(&state.services, &campaign, body).await?;
    Ok((StatusCode::ACCEPTED, Json(sent)))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct EnrollmentQuery {
    /// active, mirrored (run by MailWizz), completed, left or excluded.
    pub state: Option<String>,
    /// 1 to 500; 50 when absent.
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// An autoresponder's enrollments: each contact's step, state and next send.
#[utoipa::path(get, path = "/api/v2/campaigns/{id}/enrollments", tag = "campaigns", params(("id" = String, Path), EnrollmentQuery),
    responses((status = 200, body = List<EnrollmentOut>), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn enrollments(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<EnrollmentQuery>,
) -> ApiResult<Json<List<EnrollmentOut>>> {
    if let Some(s) = q.state.as_deref()
        && !ENROLLMENT_STATES.contains(&s)
    {
        return Err(ApiError::invalid_field(
            "state",
            "must be one of active, mirrored, completed, left, excluded",
        ));
    }
    let limit = limit_param(q.limit, 50, 500)?;
    let mut read = Read::begin(&state, &principal).await?;
    let campaign = read.find::<Campaign>(&id).await?;
    let rows = ee_app::campaigns::autoresponders::enrollments(
        &mut read,
        &campaign,
        q.state.as_deref(),
        q.cursor.as_deref(),
        limit,
    )
    .await?;
    let page = List::keyset(rows, limit, |e| e.contact_id.clone());
    Ok(Json(page.map(EnrollmentOut::from)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WinnerIn {
    /// The variant's name.
    pub variant: String,
}

/// Names an A/B test's winner before the test is over: the rest of the audience gets it.
#[utoipa::path(post, path = "/api/v2/campaigns/{id}/winner", tag = "campaigns", params(("id" = String, Path)),
    request_body = WinnerIn,
    responses((status = 200, body = CampaignOut), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn winner(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<WinnerIn>,
) -> ApiResult<Json<CampaignOut>> {
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let out = ee_app::campaigns::ab_tests::choose(&mut w, &id, &body.variant).await?;
    w.finish().await?;
    Ok(Json(out))
}

/// An rss campaign's feed: when it was checked, why the last check sent nothing (when it
/// failed), and its runs (each set of new items sent to the audience), the latest first.
#[utoipa::path(get, path = "/api/v2/campaigns/{id}/runs", tag = "campaigns", params(("id" = String, Path)),
    responses((status = 200, body = ee_app::campaigns::rss::FeedRuns), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn runs(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<ee_app::campaigns::rss::FeedRuns>> {
    let mut read = Read::begin(&state, &principal).await?;
    let campaign = read.find::<Campaign>(&id).await?;
    Ok(Json(
        ee_app::campaigns::rss::runs(&mut read, &campaign).await?,
    ))
}
