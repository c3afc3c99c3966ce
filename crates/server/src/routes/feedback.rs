//! Feedback in: the PowerMTA and MailWizz bounce webhooks of the seeds, PowerMTA's
//! accounting records and raw DSN/ARF messages posted to us, and the delivery events
//! they became (listed, filtered, the unmatched ones kept for an admin). A sender is a
//! data source that signs its requests (types `powermta`, `mailwizz`) or a caller with
//! credentials (an API key, a token).

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use ee_app::feedback::Applied;
use ee_app::feedback::intake::{
    self as intake, DeliveryEventRow, EventFilter, IntakeReport, ReportedBounce,
};
use ee_core::feedback::{Category, Class, Source};
use ee_core::source::SourceKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::ingest::header;
use super::{List, limit_param, one_of, parse_cursor};
use crate::auth::principal::authenticate;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiBytes, ApiQuery, parse_json};
use crate::read::{Read, Reading};
use crate::state::AppState;

/// Who reports: the tenant it speaks for (`None`: an admin naming none) and a key for
/// idempotency.
struct Reporter {
    tenant_id: Option<String>,
    id: String,
}

/// A signed request from a data source of one of `kinds`, or one with credentials; an
/// admin names the tenant (`tenant`) or, where allowed, none.
async fn reporter(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    kinds: &[SourceKind],
    named_source: Option<String>,
    tenant: Option<&str>,
    tenant_required: bool,
) -> ApiResult<Reporter> {
    if header(headers, &["x-ee-signature", "x-signature", "signature"]).is_some() {
        let source =
            super::sources::signed_source(state, kinds, headers, body, named_source).await?;
        return Ok(Reporter {
            tenant_id: Some(source.tenant_id),
            id: source.id,
        });
    }
    let principal = authenticate(state, &axum::http::Method::POST, headers).await?;
    let tenant_id = if tenant.is_some() || !principal.is_admin() || tenant_required {
        let mut read = Read::begin(state, &principal).await?;
        Some(read.tenant(tenant).await?)
    } else {
        None
    };
    Ok(Reporter {
        tenant_id,
        id: principal.id,
    })
}

/// A webhook's dedupe key: its `Idempotency-Key` header, per sender.
fn dedupe(headers: &HeaderMap, reporter: &Reporter, route: &str) -> Option<String> {
    header(headers, &["idempotency-key"]).map(|k| format!("{route}:{}:{k}", reporter.id))
}

/// The seed's PowerMTA bounce webhook body: `{email, type}`, with what may come with it.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PmtaBounce {
    #[serde(flatten)]
    pub bounce: ReportedBounce,
    /// An admin names the tenant (slug or id).
    #[serde(alias = "tenant_id")]
    pub tenant: Option<String>,
    /// The data source (slug or id) that signs, when no `x-ee-source` header names it.
    pub source: Option<String>,
}

/// A bounce reported by PowerMTA (or the MailWizz in front of it, seed 002 step 10):
/// `{email, type}` with `type` hard, soft, block, complaint…; `code`, `diagnostic` and
/// `message_id` are optional. Classified by the rules when the reply says something they
/// know, by `type` otherwise; applied at once (a hard bounce suppresses the address).
#[utoipa::path(post, path = "/api/v1/webhooks/pmta-bounce", tag = "feedback", request_body = PmtaBounce,
    responses((status = 200, body = Applied), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("signature" = [])))]
pub async fn pmta_bounce(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> ApiResult<Json<Applied>> {
    let named = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("source")?.as_str().map(str::to_owned));
    let tenant_hint = serde_json::from_slice::<Value>(&body).ok().and_then(|v| {
        v.get("tenant")
            .or_else(|| v.get("tenant_id"))?
            .as_str()
            .map(str::to_owned)
    });
    let reporter = reporter(
        &state,
        &headers,
        &body,
        &[SourceKind::Powermta, SourceKind::Mailwizz],
        named,
        tenant_hint.as_deref(),
        true,
    )
    .await?;
    let request: PmtaBounce = parse_json(&body)?;
    let tenant = reporter.tenant_id.clone().unwrap_or_default();
    let key = dedupe(&headers, &reporter, "pmta-bounce");
    let applied = intake::reported(
        &state.services,
        &tenant,
        Source::PmtaWebhook,
        &request.bounce,
        key,
    )
    .await?;
    Ok(Json(applied))
}

/// A bounce reported by MailWizz: the subscriber's address (`email`, `subscriber_email` or
/// `subscriber.email`), `bounce_type` (hard, soft, internal), `message`, and the MailWizz
/// campaign (`campaign_uid` or `campaign.campaign_uid`), flat or under `data`. A campaign
/// we mirrored there is found by its uid; its bounce rate can pause it (seed 003 §F).
#[utoipa::path(post, path = "/api/v1/webhooks/mailwizz-bounce", tag = "feedback", request_body = Object,
    responses((status = 200, body = Applied), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("signature" = [])))]
pub async fn mailwizz_bounce(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> ApiResult<Json<Applied>> {
    let value: Option<Value> = serde_json::from_slice(&body).ok();
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let named = text(value.as_ref().and_then(|v| v.get("source")));
    let tenant_hint = text(value.as_ref().and_then(|v| v.get("tenant")));
    let reporter = reporter(
        &state,
        &headers,
        &body,
        &[SourceKind::Mailwizz],
        named,
        tenant_hint.as_deref(),
        true,
    )
    .await?;
    let value: Value = parse_json(&body)?;
    let data = value
        .get("data")
        .filter(|d| d.is_object())
        .unwrap_or(&value);
    let field =
        |path: &[&str]| -> Option<String> { path.iter().find_map(|p| text(data.pointer(p))) };
    let bounce = ReportedBounce {
        email: field(&["/email", "/subscriber_email", "/subscriber/email"]),
        r#type: field(&["/bounce_type", "/type"]),
        code: data.get("code").cloned(),
        diagnostic: field(&["/message", "/reason", "/diagnostic"]),
        message_id: field(&["/message_id"]),
        campaign_id: None,
        occurred_at: data
            .get("date_added")
            .or_else(|| data.get("occurred_at"))
            .cloned(),
    };
    let tenant = reporter.tenant_id.clone().unwrap_or_default();
    let mut bounce = bounce;
    if let Some(uid) = field(&["/campaign_uid", "/campaign/campaign_uid"]) {
        let mut read = Read::unscoped(&state).await?;
        bounce.campaign_id =
            ee_app::campaigns::mailwizz::campaign_of_uid(&mut read, &tenant, &uid).await?;
    }
    // MailWizz writes `date_added` as "YYYY-MM-DD HH:MM:SS" (its server's time, UTC here).
    if let Some(Value::String(s)) = &bounce.occurred_at
        && s.len() == 19
        && s.as_bytes()[10] == b' '
    {
        bounce.occurred_at = Some(Value::String(format!("{}T{}Z", &s[..10], &s[11..])));
    }
    let key = dedupe(&headers, &reporter, "mailwizz-bounce");
    let applied = intake::reported(
        &state.services,
        &tenant,
        Source::MailwizzWebhook,
        &bounce,
        key,
    )
    .await?;
    Ok(Json(applied))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PostedQuery {
    /// An admin names the tenant (slug or id); without one, records are matched to
    /// their messages by their return path or Message-ID, or kept as unmatched.
    #[serde(alias = "tenant_id")]
    pub tenant: Option<String>,
    /// The data source (slug or id) that signs, when no `x-ee-source` header names it.
    pub source: Option<String>,
    /// Names what is posted in the dedupe keys (an accounting file's name, a report's id):
    /// the same name and record twice is applied once.
    pub name: Option<String>,
    /// A report's envelope recipient (the return path it was sent to).
    pub envelope_to: Option<String>,
}

fn posted_name(q: &PostedQuery, body: &[u8]) -> ApiResult<String> {
    match &q.name {
        Some(n) if n.is_empty() || n.len() > 200 => Err(ApiError::invalid_field(
            "name",
            "must have 1 to 200 characters",
        )),
        Some(n) => Ok(n.clone()),
        // Unnamed: the content's digest, so the same body posted twice counts once.
        None => Ok(ee_core::auth::token_digest(&String::from_utf8_lossy(body))),
    }
}

/// PowerMTA's accounting records (`acct.csv`), header line first: each `d`, `b`, `rb`,
/// `t`, `tq`, `f` and `rs` record becomes a delivery event, matched by its return path
/// (`orig`), `header_Message-ID` or address; other records are skipped and lines that
/// cannot be read are listed. The same file (`name`) and line posted twice counts once.
#[utoipa::path(post, path = "/api/v1/feedback/pmta-accounting", tag = "feedback", params(PostedQuery),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = IntakeReport), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("signature" = [])))]
pub async fn pmta_accounting(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<PostedQuery>,
    ApiBytes(body): ApiBytes,
) -> ApiResult<Json<IntakeReport>> {
    let reporter = reporter(
        &state,
        &headers,
        &body,
        &[SourceKind::Powermta],
        q.source.clone(),
        q.tenant.as_deref(),
        false,
    )
    .await?;
    let name = posted_name(&q, &body)?;
    let report =
        intake::accounting(&state.services, reporter.tenant_id.as_deref(), &body, &name).await?;
    Ok(Json(report))
}

/// A delivery status notification (RFC 3464), an abuse report (ARF, RFC 5965) or a
/// bounce in free text, as the raw message (`message/rfc822`): what a local MTA can pipe
/// to us. `envelope_to` (the return path it came to) names the message when it is one
/// of our per-message return paths.
#[utoipa::path(post, path = "/api/v1/feedback/reports", tag = "feedback", params(PostedQuery),
    request_body(content = String, content_type = "text/plain", description = "the raw message (RFC 5322; sent as message/rfc822 or text/plain)"),
    responses((status = 200, body = IntakeReport), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("signature" = [])))]
pub async fn reports(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<PostedQuery>,
    ApiBytes(body): ApiBytes,
) -> ApiResult<Json<IntakeReport>> {
    let reporter = reporter(
        &state,
        &headers,
        &body,
        &[SourceKind::Powermta, SourceKind::Mailwizz],
        q.source.clone(),
        q.tenant.as_deref(),
        false,
    )
    .await?;
    let name = posted_name(&q, &body)?;
    let report = intake::report_message(
        &state.services,
        reporter.tenant_id.as_deref(),
        &body,
        q.envelope_to.as_deref(),
        &name,
    )
    .await?;
    Ok(Json(report))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// hard, soft, complaint, block, delivered or none.
    pub class: Option<String>,
    /// One of PowerMTA's seventeen categories (bad-mailbox, quota-issues…).
    pub category: Option<String>,
    /// smtp, dsn, arf, pmta_accounting, pmta_webhook or mailwizz_webhook.
    pub source: Option<String>,
    /// The recipient's address.
    pub recipient: Option<String>,
    pub campaign_id: Option<String>,
    pub message_id: Option<String>,
    /// An admin: only the events no tenant could be found for.
    pub unmatched: Option<bool>,
    /// An admin names the tenant (slug or id); all tenants when absent.
    #[serde(alias = "tenant")]
    pub tenant_id: Option<String>,
    /// 1 to 500; 50 when absent.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryEventOut {
    pub id: String,
    pub tenant_id: Option<String>,
    pub message_id: Option<String>,
    pub campaign_id: Option<String>,
    pub contact_id: Option<String>,
    pub ip_id: Option<String>,
    pub recipient: String,
    pub kind: ee_core::feedback::EventKind,
    /// hard, soft, complaint, block, delivered or none.
    pub class: Class,
    pub category: Category,
    pub source: Source,
    pub code: Option<i64>,
    /// The enhanced status code (5.1.1).
    pub status: Option<String>,
    pub diagnostic: Option<String>,
    pub remote_mta: Option<String>,
    /// The sending IP the source reported.
    pub ip_address: Option<String>,
    /// Where the raw record is (a file's line, a report's name).
    pub raw_ref: Option<String>,
    pub occurred_at: String,
    pub received_at: String,
}

fn event_out(r: DeliveryEventRow) -> DeliveryEventOut {
    use ee_core::timefmt::to_rfc3339;
    DeliveryEventOut {
        id: r.id,
        tenant_id: r.tenant_id,
        message_id: r.message_id,
        campaign_id: r.campaign_id,
        contact_id: r.contact_id,
        ip_id: r.ip_id,
        recipient: r.recipient,
        kind: r.kind,
        class: r.class,
        category: r.category,
        source: r.source,
        code: r.code,
        status: r.status,
        diagnostic: r.diagnostic,
        remote_mta: r.remote_mta,
        ip_address: r.ip_address,
        raw_ref: r.raw_ref,
        occurred_at: to_rfc3339(r.occurred_at),
        received_at: to_rfc3339(r.received_at),
    }
}

/// Delivery events (bounces, complaints, deliveries, deferrals from every source), newest
/// first, filtered; cursor pagination. An admin sees every tenant's and the unmatched.
#[utoipa::path(get, path = "/api/v1/feedback/events", tag = "feedback", params(EventQuery),
    responses((status = 200, body = List<DeliveryEventOut>), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn events(
    State(state): State<AppState>,
    principal: crate::auth::Principal,
    ApiQuery(q): ApiQuery<EventQuery>,
) -> ApiResult<Json<List<DeliveryEventOut>>> {
    let classes: Vec<&str> = Class::ALL.iter().map(|c| c.as_str()).collect();
    let categories: Vec<&str> = Category::ALL.iter().map(|c| c.as_str()).collect();
    let sources: Vec<&str> = Source::ALL.iter().map(|s| s.as_str()).collect();
    one_of(q.class.as_deref(), "class", &classes)?;
    one_of(q.category.as_deref(), "category", &categories)?;
    one_of(q.source.as_deref(), "source", &sources)?;
    let limit = limit_param(q.limit, 50, 500)?;
    let mut read = Read::begin(&state, &principal).await?;
    let tenant = match (&q.tenant_id, principal.is_admin()) {
        (Some(_), _) | (None, false) => Some(read.tenant(q.tenant_id.as_deref()).await?),
        (None, true) => None,
    };
    if q.unmatched == Some(true) {
        principal.require_admin()?;
    }
    let recipient = q.recipient.as_deref().map(|r| {
        ee_core::contacts::normalize(r, Default::default())
            .unwrap_or_else(|_| r.to_ascii_lowercase())
    });
    let filter = EventFilter {
        tenant_id: match (q.unmatched, &tenant) {
            (Some(true), _) => Some(None),
            (_, Some(t)) => Some(Some(t.as_str())),
            _ => None,
        },
        class: q.class.as_deref(),
        category: q.category.as_deref(),
        source: q.source.as_deref(),
        recipient: recipient.as_deref(),
        campaign_id: q.campaign_id.as_deref(),
        message_id: q.message_id.as_deref(),
    };
    let rows = intake::events(
        &mut read,
        &filter,
        parse_cursor(q.cursor.as_deref())?,
        limit,
    )
    .await?;
    let page = List::keyset(rows, limit, |e| format!("{}_{}", e.received_at, e.id));
    Ok(Json(page.map(event_out)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeptMessageOut {
    pub id: String,
    pub envelope_from: Option<String>,
    pub envelope_to: String,
    /// The message as received (its first megabyte).
    pub raw: String,
    pub size: i64,
    /// Why it could not be read as a report.
    pub reason: String,
    pub received_at: String,
}

/// Mail the bounce listener received but could not read as a report (an auto-reply, a
/// bounce in an unknown shape), newest first: kept for an operator (admin).
#[utoipa::path(get, path = "/api/v1/feedback/unread", tag = "feedback", params(super::ListParams),
    responses((status = 200, body = List<KeptMessageOut>), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn unread(
    State(state): State<AppState>,
    principal: crate::auth::Principal,
    ApiQuery(q): ApiQuery<super::ListParams>,
) -> ApiResult<Json<List<KeptMessageOut>>> {
    principal.require_admin()?;
    let limit = limit_param(q.limit, 100, 500)?;
    let mut read = Read::begin(&state, &principal).await?;
    let rows = intake::unread(&mut read, parse_cursor(q.cursor.as_deref())?, limit).await?;
    let page = List::keyset(rows, limit, |m| format!("{}_{}", m.received_at, m.id));
    Ok(Json(page.map(|m| KeptMessageOut {
        id: m.id,
        envelope_from: m.envelope_from,
        envelope_to: m.envelope_to,
        raw: m.raw,
        size: m.size,
        reason: m.reason,
        received_at: ee_core::timefmt::to_rfc3339(m.received_at),
    })))
}
