//! `/api/v1/mailwizz/instances`: a tenant's MailWizz instances (several allowed), the API
//! key sealed at rest and never returned; a campaign's stats read back; the mapping of
//! sending IPs to MailWizz delivery servers with the state of their quota sync.

use super::{List, ListParams};
use crate::extract::ApiQuery;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ee_core::timefmt::to_rfc3339;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, RequestMeta};
use crate::read::{Read, Reading};
use crate::state::AppState;
use crate::write::{Begin, Write};

use ee_app::contacts::Contact;
pub use ee_app::delivery::mailwizz::KEY_PURPOSE;
use ee_app::delivery::mailwizz_instances::{
    self as instances, Instance, InstanceIn, InstanceOut, InstanceRules,
};

fn rules(state: &AppState) -> InstanceRules<'_> {
    InstanceRules {
        outbound: &state.services.outbound,
        sealer: &state.settings.sealer,
    }
}

#[utoipa::path(post, path = "/api/v1/mailwizz/instances", tag = "mailwizz", request_body = InstanceIn,
    responses((status = 201, body = InstanceOut), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    ApiJson(body): ApiJson<InstanceIn>,
) -> ApiResult<(StatusCode, Json<InstanceOut>)> {
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let tenant_id = w.tenant(body.tenant_id.as_deref()).await?;
    let out = instances::create(&mut w, &rules(&state), &tenant_id, &body).await?;
    w.finish().await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(get, path = "/api/v1/mailwizz/instances", tag = "mailwizz", params(ListParams),
    responses((status = 200, body = List<InstanceOut>)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(page): ApiQuery<ListParams>,
) -> ApiResult<Json<List<InstanceOut>>> {
    let mut read = Read::begin(&state, &principal).await?;
    let rows = instances::list(&mut read).await?;
    Ok(Json(List::of(
        rows.into_iter().map(InstanceOut::from).collect(),
        &page,
    )?))
}

#[utoipa::path(get, path = "/api/v1/mailwizz/instances/{id}", tag = "mailwizz", params(("id" = String, Path)),
    responses((status = 200, body = InstanceOut), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<InstanceOut>> {
    let mut read = Read::begin(&state, &principal).await?;
    Ok(Json(read.find::<Instance>(&id).await?.into()))
}

#[utoipa::path(put, path = "/api/v1/mailwizz/instances/{id}", tag = "mailwizz", params(("id" = String, Path)),
    request_body = InstanceIn,
    responses((status = 200, body = InstanceOut), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<InstanceIn>,
) -> ApiResult<Json<InstanceOut>> {
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let out = instances::update(&mut w, &rules(&state), &id, &body).await?;
    w.finish().await?;
    Ok(Json(out))
}

#[utoipa::path(delete, path = "/api/v1/mailwizz/instances/{id}", tag = "mailwizz", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    ee_app::write::delete::<Instance>(&mut w, &id).await?;
    w.finish().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = MailwizzCampaignStats)]
pub struct CampaignStats {
    pub instance_id: String,
    pub campaign_uid: String,
    /// MailWizz's `data` as it answered (subscribers_count, processed_count,
    /// delivery_success_count, opens_count, clicks_count, bounces_count…).
    #[schema(value_type = Object)]
    pub stats: serde_json::Value,
}

#[utoipa::path(get, path = "/api/v1/mailwizz/instances/{id}/campaigns/{uid}/stats", tag = "mailwizz",
    params(("id" = String, Path), ("uid" = String, Path, description = "MailWizz campaign uid")),
    responses((status = 200, body = CampaignStats), (status = 404, body = ErrorBody), (status = 502, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn campaign_stats(
    State(state): State<AppState>,
    principal: Principal,
    Path((id, uid)): Path<(String, String)>,
) -> ApiResult<Json<CampaignStats>> {
    let mut read = Read::begin(&state, &principal).await?;
    let instance = read.find::<Instance>(&id).await?;
    drop(read);
    let stats =
        ee_app::delivery::mailwizz::campaign_stats(&state.services, &instance, &uid).await?;
    Ok(Json(CampaignStats {
        instance_id: instance.id,
        campaign_uid: uid,
        stats,
    }))
}

pub use ee_app::delivery::mailwizz_servers::{DeliveryServerIn, DeliveryServerOut};

#[utoipa::path(post, path = "/api/v1/mailwizz/delivery-servers", tag = "mailwizz", request_body = DeliveryServerIn,
    responses((status = 201, body = DeliveryServerOut), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn create_delivery_server(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    ApiJson(body): ApiJson<DeliveryServerIn>,
) -> ApiResult<(StatusCode, Json<DeliveryServerOut>)> {
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    let out = ee_app::delivery::mailwizz_servers::create(&mut w, body).await?;
    w.finish().await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(get, path = "/api/v1/mailwizz/delivery-servers", tag = "mailwizz", params(ListParams),
    responses((status = 200, body = List<DeliveryServerOut>)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list_delivery_servers(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(page): ApiQuery<ListParams>,
) -> ApiResult<Json<List<DeliveryServerOut>>> {
    let mut read = Read::begin(&state, &principal).await?;
    let rows = ee_app::delivery::mailwizz_servers::list(&mut read).await?;
    Ok(Json(List::of(
        rows.into_iter().map(DeliveryServerOut::from).collect(),
        &page,
    )?))
}

#[utoipa::path(delete, path = "/api/v1/mailwizz/delivery-servers/{id}", tag = "mailwizz", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn delete_delivery_server(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let mut w = Write::begin(&state, &principal, &meta, state.now()).await?;
    ee_app::delivery::mailwizz_servers::delete(&mut w, &id).await?;
    w.finish().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriberOut {
    pub instance_id: String,
    pub list_uid: String,
    /// The subscriber's uid in that list; absent when MailWizz refused it (`error`).
    pub subscriber_uid: Option<String>,
    pub error: Option<String>,
    pub synced_at: String,
    /// When it was unsubscribed in MailWizz because we may no longer mail the contact.
    pub unsubscribed_at: Option<String>,
}

#[utoipa::path(get, path = "/api/v2/contacts/{id}/mailwizz", tag = "mailwizz", params(("id" = String, Path), ListParams),
    responses((status = 200, body = List<SubscriberOut>), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
/// The contact's subscribers in MailWizz lists (tenants delivering through MailWizz).
pub async fn contact_subscribers(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiQuery(page): ApiQuery<ListParams>,
) -> ApiResult<Json<List<SubscriberOut>>> {
    let mut read = Read::begin(&state, &principal).await?;
    let contact = read.find::<Contact>(&id).await?;
    let rows = ee_app::delivery::mailwizz::subscribers_of(&mut read, &contact).await?;
    Ok(Json(List::of(
        rows.into_iter()
            .map(|s| SubscriberOut {
                instance_id: s.instance_id,
                list_uid: s.list_uid,
                subscriber_uid: s.subscriber_uid,
                error: s.error,
                synced_at: to_rfc3339(s.synced_at),
                unsubscribed_at: s.unsubscribed_at.map(to_rfc3339),
            })
            .collect(),
        &page,
    )?))
}
