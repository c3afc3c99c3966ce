pub mod alerts;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod blacklists;
pub mod contacts;
pub mod delivery;
pub mod domains;
pub mod imports;
pub mod ips;
pub mod jobs;
pub mod mailwizz;
pub mod messages;
pub mod pools;
pub mod powermta;
pub mod relays;
pub mod segments;
pub mod sources;
pub mod suppressions;
pub mod system;
pub mod templates;
pub mod tenants;
pub mod tracking;
pub mod unsubscribe;
pub mod users;
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
    pub fn limit(&self) -> i64 {
        self.limit.unwrap_or(100).clamp(1, 500)
    }
    pub fn offset(&self) -> i64 {
        self.offset.unwrap_or(0).max(0)
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
