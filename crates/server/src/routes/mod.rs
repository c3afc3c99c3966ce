pub mod alerts;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod blacklists;
pub mod campaigns;
pub mod compliance;
pub mod contacts;
pub mod delivery;
pub mod dmarc;
pub mod domains;
pub mod events;
pub mod feedback;
pub mod feedback_forwards;
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
pub mod reports;
pub mod segments;
pub mod session;
pub mod shaping;
pub mod sources;
pub mod suppressions;
pub mod system;
pub mod tags;
pub mod templates;
pub mod tenants;
pub mod tls_reports;
pub mod tracking;
pub mod unsubscribe;
pub mod users;
pub mod validation;
pub mod warmup;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The page a list request asks for: every list takes `limit` and `cursor`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// 1 to 500; 100 when absent.
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page; the first page without it.
    pub cursor: Option<String>,
}

/// A page of a list paged by position: `limit` rows from `offset`.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub offset: i64,
    pub limit: i64,
}

impl Window {
    /// Reads the rows of this window plus one: the extra row tells that a next page
    /// exists (see `List::from_window`).
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }
}

impl ListParams {
    /// The window of a list paged by position (its cursor is the offset of the page).
    pub fn window(&self) -> Result<Window, crate::error::ApiError> {
        window(self.limit, self.cursor.as_deref(), 100, 500)
    }
}

/// The window of a list paged by position whose `limit` has its own default and bound.
pub fn window(
    limit: Option<i64>,
    cursor: Option<&str>,
    default: i64,
    max: i64,
) -> Result<Window, crate::error::ApiError> {
    let limit = limit_param(limit, default, max)?;
    let offset = match cursor {
        None => 0,
        Some(c) => c.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            crate::error::ApiError::invalid_field("cursor", "is not a cursor this API returned")
        })?,
    };
    Ok(Window { offset, limit })
}

/// The one shape of every list the API returns: a page of items and, when more follow,
/// the cursor that asks for the next page.
#[derive(Debug, Serialize, ToSchema)]
pub struct List<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl<T> List<T> {
    /// A page of rows read with `window.fetch()` rows from `window.offset`.
    pub fn from_window(mut rows: Vec<T>, window: Window) -> Self {
        let more = rows.len() as i64 > window.limit;
        rows.truncate(window.limit as usize);
        Self {
            items: rows,
            next_cursor: more.then(|| (window.offset + window.limit).to_string()),
        }
    }

    /// A page of a list read whole: the short, admin-sized lists (a tenant's IPs,
    /// domains, relays, templates …), cut into the page asked for.
    pub fn of(all: Vec<T>, params: &ListParams) -> Result<Self, crate::error::ApiError> {
        let window = params.window()?;
        let rows = all
            .into_iter()
            .skip(window.offset as usize)
            .take(window.fetch() as usize)
            .collect();
        Ok(Self::from_window(rows, window))
    }

    /// The same page with each item converted.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> List<U> {
        List {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }

    /// A page of a list paged by key: full pages carry the key of their last row.
    pub fn keyset(rows: Vec<T>, limit: i64, key: impl Fn(&T) -> String) -> Self {
        let next_cursor = if rows.len() as i64 == limit {
            rows.last().map(key)
        } else {
            None
        };
        Self {
            items: rows,
            next_cursor,
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
