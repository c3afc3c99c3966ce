//! Delivery reports: a tenant's figures over a period of UTC days, by day, sending IP,
//! sending domain, recipient provider or campaign, read from the counters kept as events
//! happen (`report_counts`): sent, delivered, bounced by class and category, complaints,
//! people's and machines' opens and clicks, unsubscribes, with their rates.

use std::collections::BTreeMap;

use ee_store::report_counters::{self, Dimension};
use ee_store::{AnyConnection, Scope};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppError;
use crate::feedback::report_counts::CATEGORY;

const DAY_MS: i64 = 86_400_000;
/// The longest period a report covers.
pub const MAX_DAYS: i64 = 366;

#[derive(Debug, Default, Clone, Serialize, ToSchema, PartialEq)]
pub struct Bounces {
    pub hard: i64,
    pub soft: i64,
    /// Refused for the sender's sake (reputation, block lists, policy).
    pub block: i64,
    /// Our own configuration (authentication, relaying, the sender address).
    pub other: i64,
    pub total: i64,
    /// By PowerMTA's categories.
    pub by_category: BTreeMap<String, i64>,
}

#[derive(Debug, Default, Clone, Serialize, ToSchema, PartialEq)]
pub struct Engagement {
    /// People's, each message once.
    pub unique: i64,
    /// People's, repeats included.
    pub total: i64,
    /// Privacy proxies' and link scanners', kept apart.
    pub machine: i64,
}

#[derive(Debug, Default, Clone, Serialize, ToSchema, PartialEq)]
pub struct ReportRates {
    /// Delivered ÷ handed over (sent and refused).
    pub delivery: f64,
    /// Bounced ÷ handed over.
    pub bounce: f64,
    /// Complaints ÷ handed over.
    pub complaint: f64,
    /// Unique opens ÷ sent.
    pub open: f64,
    /// Unique clicks ÷ sent.
    pub click: f64,
    /// Unsubscribes ÷ sent.
    pub unsubscribe: f64,
    /// Temporary refusals ÷ attempts that reached a server (handed over and deferred):
    /// how often a provider says "not now" (by provider and IP, what traffic shaping
    /// reacts to).
    pub deferral: f64,
    /// Bounces of class block (refused for the sender's sake) ÷ handed over.
    pub block: f64,
    /// Sent over TLS ÷ sent.
    pub tls: f64,
}

#[derive(Debug, Default, Clone, Serialize, ToSchema, PartialEq)]
pub struct ReportRow {
    /// The day (YYYY-MM-DD), the IP's id, the domain, the provider or the campaign's id;
    /// empty for what has none (a bounce of a message not ours).
    pub key: String,
    /// The IP's address, the campaign's name.
    pub label: Option<String>,
    /// Accepted by the next hop.
    pub sent: i64,
    /// Accepted by the recipient's server.
    pub delivered: i64,
    /// Refused during our own SMTP session (never handed over).
    pub refused: i64,
    /// Temporary refusals reported (each attempt).
    pub deferred: i64,
    /// Handed over on our own SMTP connections over TLS, and of those with the peer's
    /// certificate verified (direct delivery and relays).
    pub tls: i64,
    pub tls_verified: i64,
    pub bounced: Bounces,
    pub complaints: i64,
    pub opens: Engagement,
    pub clicks: Engagement,
    pub unsubscribes: i64,
    pub rates: ReportRates,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = DeliveryReport)]
pub struct Report {
    /// The tenant reported on; null for every tenant (an administrator's view).
    pub tenant_id: Option<String>,
    /// The first and last day (UTC), inclusive.
    pub from: String,
    pub to: String,
    /// day, ip, domain, provider or campaign.
    pub by: String,
    pub rows: Vec<ReportRow>,
    pub totals: ReportRow,
}

pub fn dimension(by: &str) -> Option<Dimension> {
    Some(match by {
        "day" => Dimension::Day,
        "ip" => Dimension::Ip,
        "domain" => Dimension::Domain,
        "provider" => Dimension::Provider,
        "campaign" => Dimension::Campaign,
        _ => return None,
    })
}

fn add(row: &mut ReportRow, name: &str, n: i64) {
    match name {
        "sent" => row.sent += n,
        "delivered" => row.delivered += n,
        "refused" => row.refused += n,
        "deferred" => row.deferred += n,
        "sent_tls" => row.tls += n,
        "sent_tls_verified" => row.tls_verified += n,
        "bounced_hard" => row.bounced.hard += n,
        "bounced_soft" => row.bounced.soft += n,
        "bounced_block" => row.bounced.block += n,
        "bounced_other" => row.bounced.other += n,
        "complained" => row.complaints += n,
        "opened" => row.opens.total += n,
        "opened_unique" => row.opens.unique += n,
        "opened_machine" => row.opens.machine += n,
        "clicked" => row.clicks.total += n,
        "clicked_unique" => row.clicks.unique += n,
        "clicked_machine" => row.clicks.machine += n,
        "unsubscribed" => row.unsubscribes += n,
        other => {
            if let Some(category) = other.strip_prefix(CATEGORY) {
                *row.bounced
                    .by_category
                    .entry(category.to_owned())
                    .or_default() += n;
            }
        }
    }
}

fn finish(row: &mut ReportRow) {
    let b = &mut row.bounced;
    b.total = b.hard + b.soft + b.block + b.other;
    let ratio = |n: i64, of: i64| if of <= 0 { 0.0 } else { n as f64 / of as f64 };
    let handed = row.sent + row.refused;
    row.rates = ReportRates {
        delivery: ratio(row.delivered, handed),
        bounce: ratio(row.bounced.total, handed),
        complaint: ratio(row.complaints, handed),
        open: ratio(row.opens.unique, row.sent),
        click: ratio(row.clicks.unique, row.sent),
        unsubscribe: ratio(row.unsubscribes, row.sent),
        deferral: ratio(row.deferred, handed + row.deferred),
        block: ratio(row.bounced.block, handed),
        tls: ratio(row.tls, row.sent),
    };
}

/// The report of a tenant (one `Read::tenant_view` resolved; every tenant: `None`) over
/// days `[from_ms, to_ms]` (epoch ms of any time in the first and last day).
pub async fn report(
    read: &mut crate::read::Read,
    tenant_id: Option<&str>,
    from_ms: i64,
    to_ms: i64,
    by: &str,
) -> Result<Report, AppError> {
    let (conn, scope) = (read.conn(), Scope::from(tenant_id));
    let dimension = dimension(by)
        .ok_or_else(|| invalid("by", "must be day, ip, domain, provider or campaign"))?;
    let (from_day, to_day) = (from_ms.div_euclid(DAY_MS), to_ms.div_euclid(DAY_MS));
    if to_day < from_day {
        return Err(invalid("to", "must not be before from"));
    }
    if to_day - from_day >= MAX_DAYS {
        return Err(invalid(
            "to",
            format!("a report covers at most {MAX_DAYS} days"),
        ));
    }
    let sums = report_counters::sums(conn, scope, from_day, to_day, dimension).await?;
    let mut rows: BTreeMap<String, ReportRow> = BTreeMap::new();
    let mut totals = ReportRow::default();
    for (key, name, n) in sums {
        let key = match dimension {
            Dimension::Day => key
                .parse::<i64>()
                .map(|d| ee_core::timefmt::to_rfc3339(d * DAY_MS)[..10].to_owned())
                .unwrap_or(key),
            _ => key,
        };
        let row = rows.entry(key.clone()).or_insert_with(|| ReportRow {
            key,
            ..ReportRow::default()
        });
        add(row, &name, n);
        add(&mut totals, &name, n);
    }
    let mut rows: Vec<ReportRow> = rows.into_values().collect();
    for row in &mut rows {
        finish(row);
        row.label = label(conn, scope, dimension, &row.key).await?;
    }
    finish(&mut totals);
    Ok(Report {
        tenant_id: scope.tenant().map(str::to_owned),
        from: ee_core::timefmt::to_rfc3339(from_day * DAY_MS)[..10].to_owned(),
        to: ee_core::timefmt::to_rfc3339(to_day * DAY_MS)[..10].to_owned(),
        by: by.to_owned(),
        rows,
        totals,
    })
}

/// An IP's address, a campaign's name.
async fn label(
    conn: &mut AnyConnection,
    scope: Scope<'_>,
    dimension: Dimension,
    key: &str,
) -> Result<Option<String>, AppError> {
    if key.is_empty() {
        return Ok(None);
    }
    Ok(match dimension {
        Dimension::Ip => ee_store::ips::get(conn, key, scope)
            .await
            .ok()
            .map(|ip| ip.ip_address),
        Dimension::Campaign => ee_store::campaigns::get(conn, key, scope)
            .await
            .ok()
            .map(|c| c.name),
        _ => None,
    })
}

fn invalid(field: &str, message: impl Into<String>) -> AppError {
    let mut errors = ee_core::ValidationErrors::default();
    errors.add(field, message);
    AppError::Invalid(errors)
}
