pub mod alerts;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod blacklists;
pub mod contacts;
pub mod delivery;
pub mod domains;
pub mod imports;
pub mod ingest;
pub mod ips;
pub mod jobs;
pub mod mailwizz;
pub mod message_queue;
pub mod messages;
pub mod pools;
pub mod powermta;
pub mod relays;
pub mod segments;
pub mod sources;
pub mod suppressions;
pub mod system;
pub mod tags;
pub mod templates;
pub mod tenants;
pub mod tracking;
pub mod unsubscribe;
pub mod users;
pub mod validation;
pub mod warmup;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Offset pagination for short, admin-sized lists.
#[derive(Debug, Deserialize, IntoParams)]
pub struct PageParams {
    /// 1 to 500; 100 when absent.
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

impl PageParams {
    pub fn limit(&self) -> Result<i64, crate::error::ApiError> {
        limit_param(self.limit, 100, 500)
    }
    pub fn offset(&self) -> Result<i64, crate::error::ApiError> {
        match self.offset {
            Some(n) if n < 0 => Err(crate::error::ApiError::invalid_field(
                "offset",
                "must be 0 or more",
            )),
            other => Ok(other.unwrap_or(0)),
        }
    }
}

/// A filter value that must be one of `allowed` (422 naming the parameter and the
/// values otherwise: an unknown value would only ever match nothing).
pub fn one_of(
    value: Option<&str>,
    field: &str,
    allowed: &[&str],
) -> Result<(), crate::error::ApiError> {
    match value {
        Some(v) if !allowed.contains(&v) => Err(crate::error::ApiError::invalid_field(
            field,
            format!("must be one of {}", allowed.join(", ")),
        )),
        _ => Ok(()),
    }
}

/// A `limit` parameter: `default` when absent, else 1 to `max` (422 naming it otherwise:
/// a value out of range is refused, not quietly changed).
pub fn limit_param(
    value: Option<i64>,
    default: i64,
    max: i64,
) -> Result<i64, crate::error::ApiError> {
    match value {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(crate::error::ApiError::invalid_field(
            "limit",
            format!("must be 1 to {max}"),
        )),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub limit: i64,
    pub offset: i64,
}

/// Parses an optional RFC 3339 field into epoch ms, or 422 naming it.
pub fn parse_time(value: Option<&str>, field: &str) -> Result<Option<i64>, crate::error::ApiError> {
    value
        .map(|text| {
            ee_core::timefmt::parse_rfc3339(text).ok_or_else(|| {
                crate::error::ApiError::invalid_field(
                    field,
                    "must be an RFC 3339 date-time, e.g. 2026-12-31T23:59:59Z",
                )
            })
        })
        .transpose()
}

/// A tenant by slug or id, as the caller may see it.
pub async fn tenant_of(
    conn: &mut ee_store::AnyConnection,
    principal: &crate::auth::Principal,
    requested: Option<&str>,
    field: &str,
) -> crate::error::ApiResult<String> {
    match requested {
        None => principal.owning_tenant(None, field),
        Some(key) => {
            let found = ee_store::tenants::get_by_slug_or_id(conn, key)
                .await
                .map_err(crate::error::ApiError::from_store("tenant"))?;
            principal.owning_tenant(Some(&found.id), field)
        }
    }
}

pub fn parse_cursor(cursor: Option<&str>) -> crate::error::ApiResult<Option<(i64, String)>> {
    cursor
        .map(|c| {
            c.split_once('_')
                .and_then(|(t, id)| Some((t.parse().ok()?, id.to_owned())))
                .ok_or_else(|| {
                    crate::error::ApiError::invalid_field(
                        "cursor",
                        "is not a cursor this API returned",
                    )
                })
        })
        .transpose()
}
