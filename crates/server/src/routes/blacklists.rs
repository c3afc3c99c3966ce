use axum::Json;
use axum::extract::State;
use ee_app::infra::blacklists::{self, Listing};
use ee_core::timefmt::to_rfc3339;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::audit::{self};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiQuery, RequestMeta};
use crate::read::{Read, Reading};
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
pub struct CheckQuery {
    /// The IP address to check.
    pub ip: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListingOut {
    pub zone: String,
    pub listed: bool,
    /// The list's return codes (e.g. 127.0.0.2).
    pub codes: Vec<String>,
    /// The list's TXT reason.
    pub reason: Option<String>,
    /// The list could not be asked (time-out, refusal), or failed its self-test.
    pub error: Option<String>,
    /// The list failed its self-test (it lists the clean test address 127.0.0.1, or not
    /// 127.0.0.2): its answer is ignored.
    pub misbehaving: bool,
}

impl From<Listing> for ListingOut {
    fn from(l: Listing) -> Self {
        Self {
            zone: l.zone,
            listed: l.listed,
            codes: l.codes,
            reason: l.reason,
            error: l.error,
            misbehaving: l.misbehaving,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckOut {
    pub ip: String,
    /// Set when the IP is one of the caller's: the check was recorded and applied.
    pub ip_id: Option<String>,
    pub state: Option<ee_core::ip::IpState>,
    pub listed: bool,
    pub lists: Vec<ListingOut>,
}

/// Checks an IP against the configured DNS blacklists now. For one of the caller's IPs
/// the result is kept in its history and applied (listed → BLACKLISTED, delisted → back).
#[utoipa::path(get, path = "/api/v1/blacklists/check", tag = "blacklists", params(CheckQuery),
    responses((status = 200, body = CheckOut), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn check(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    ApiQuery(q): ApiQuery<CheckQuery>,
) -> ApiResult<Json<CheckOut>> {
    let address = ee_core::ip::normalize_ip(&q.ip)
        .ok_or_else(|| ApiError::invalid_field("ip", "must be an IPv4 or IPv6 address"))?;
    let now = state.now();
    let mut read = Read::begin(&state, &principal).await?;
    let managed = blacklists::managed(&mut read, &address).await?;
    drop(read);
    let out = match managed {
        Some(ip) => {
            let caller = audit::caller(&principal, &meta);
            let (after, listings) =
                blacklists::check_blacklists(&state.services, &ip, Some(&caller), now).await?;
            let listed = listings.iter().any(|l| l.listed);
            CheckOut {
                ip: address,
                ip_id: Some(ip.id),
                state: Some(after.state),
                listed,
                lists: listings.into_iter().map(ListingOut::from).collect(),
            }
        }
        None => {
            let parsed = address
                .parse()
                .map_err(|_| ApiError::invalid_field("ip", "must be an IPv4 or IPv6 address"))?;
            let listings = blacklists::check_address(&state.services, parsed).await;
            CheckOut {
                ip: address,
                ip_id: None,
                state: None,
                listed: listings.iter().any(|l| l.listed),
                lists: listings.into_iter().map(ListingOut::from).collect(),
            }
        }
    };
    Ok(Json(out))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct HistoryQuery {
    pub ip_id: String,
    /// 1 to 1000; 200 when absent.
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryEntry {
    pub zone: String,
    pub listed: bool,
    pub checked_at: String,
    #[schema(value_type = Object)]
    pub details: Value,
}

/// Every recorded check of an IP, newest first.
#[utoipa::path(get, path = "/api/v1/blacklists/history", tag = "blacklists", params(HistoryQuery),
    responses((status = 200, body = super::List<HistoryEntry>), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn history(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> ApiResult<Json<super::List<HistoryEntry>>> {
    let window = super::window(q.limit, q.cursor.as_deref(), 200, 1000)?;
    let mut read = Read::begin(&state, &principal).await?;
    let rows = blacklists::history(&mut read, &q.ip_id, window.fetch(), window.offset).await?;
    let rows = rows
        .into_iter()
        .map(|(zone, listed, at, details)| HistoryEntry {
            zone,
            listed: listed == 1,
            checked_at: to_rfc3339(at),
            details: serde_json::from_str(&details).unwrap_or_default(),
        })
        .collect();
    Ok(Json(super::List::from_window(rows, window)))
}
