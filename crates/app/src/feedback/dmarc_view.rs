//! What DMARC reports show: a domain's figures over the last days (sources, alignment
//! pass rates, its own IPs failing, senders we do not know) and the reports themselves
//! (a tenant's own; an administrator's, with those no tenant was given and why).

use ee_core::dmarc::ReportState;
use ee_core::dmarc::summary::{self, Source, Summary};
use ee_core::timefmt::to_rfc3339;
use ee_store::dmarc_reports::{self, ReportFilter};
use ee_store::domains::Domain;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppError;
use crate::input::invalid;
use crate::read::Read;

/// Days a summary covers unless asked, and at most.
pub const DEFAULT_DAYS: i64 = 30;
pub const MAX_DAYS: i64 = 366;
/// Reports listed at most.
pub const MAX_LISTED: i64 = 500;

/// A domain's DMARC figures over the reports received in the last `days` days.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DmarcSummaryOut {
    pub domain_id: String,
    pub domain: String,
    pub days: i64,
    /// From when reports are counted (received at or after).
    pub since: String,
    /// Reports counted.
    pub reports: i64,
    #[serde(flatten)]
    pub summary: Summary,
}

/// The summary of a domain (one the caller may see: found through `Read::find`).
pub async fn domain_summary(
    read: &mut Read,
    domain: &Domain,
    days: Option<i64>,
    now: i64,
) -> Result<DmarcSummaryOut, AppError> {
    let days = checked_days(days)?;
    let since = now - days * 86_400_000;
    let conn = read.conn();
    let reports = dmarc_reports::count(&mut *conn, &domain.id, since).await?;
    let sources = dmarc_reports::sources(conn, &domain.id, since)
        .await?
        .into_iter()
        .map(
            |(ip, own, messages, dkim_aligned, spf_aligned, passed)| Source {
                ip,
                own: own != 0,
                messages,
                dkim_aligned,
                spf_aligned,
                passed,
            },
        )
        .collect();
    Ok(DmarcSummaryOut {
        domain_id: domain.id.clone(),
        domain: domain.domain_name.clone(),
        days,
        since: to_rfc3339(since),
        reports,
        summary: summary::summarize(sources),
    })
}

fn checked_days(days: Option<i64>) -> Result<i64, AppError> {
    let days = days.unwrap_or(DEFAULT_DAYS);
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(invalid("days", format!("must be 1 to {MAX_DAYS}")));
    }
    Ok(days)
}

/// A report as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DmarcReportOut {
    pub id: String,
    pub tenant_id: Option<String>,
    pub domain_id: Option<String>,
    pub state: ReportState,
    /// Why it was not attributed, or not read.
    pub reason: Option<String>,
    /// The domain it is about (its `policy_published` domain); empty when not read.
    pub domain: String,
    /// Who wrote it, as it says.
    pub org_name: String,
    pub email: String,
    /// Its id at the reporter.
    pub report_id: String,
    /// The period it covers (empty when not read).
    pub begin: String,
    pub end: String,
    /// The domain's policy as the reporter saw it (`p=quarantine; adkim=r`).
    pub policy: String,
    pub messages: i64,
    /// Sources and outcomes stored, and records left out as unreadable.
    pub records: i64,
    pub skipped: i64,
    /// The mail's envelope sender.
    pub sender: Option<String>,
    /// The mail's size in bytes.
    pub size: i64,
    pub received_at: String,
}

/// Which reports to list.
#[derive(Debug, Clone, Default)]
pub struct DmarcReportQuery<'a> {
    pub domain_id: Option<&'a str>,
    /// `attributed`, `unattributed` or `refused`.
    pub state: Option<&'a str>,
    pub days: Option<i64>,
    pub limit: Option<i64>,
}

/// Reports the caller may see, the latest received first.
pub async fn reports(
    read: &mut Read,
    query: &DmarcReportQuery<'_>,
    now: i64,
) -> Result<Vec<DmarcReportOut>, AppError> {
    let days = checked_days(query.days)?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_LISTED).contains(&limit) {
        return Err(invalid("limit", format!("must be 1 to {MAX_LISTED}")));
    }
    let state =
        match query.state {
            None => None,
            Some(s) => Some(ReportState::parse(s).ok_or_else(|| {
                invalid("state", format!("must be one of {}", ReportState::names()))
            })?),
        };
    let (conn, scope) = read.parts();
    let rows = dmarc_reports::list(
        conn,
        &ReportFilter {
            scope,
            domain_id: query.domain_id,
            state,
            since: now - days * 86_400_000,
            limit,
        },
    )
    .await?;
    let time = |ms: i64, state: ReportState| {
        if state == ReportState::Refused {
            String::new()
        } else {
            to_rfc3339(ms)
        }
    };
    Ok(rows
        .into_iter()
        .map(|r| DmarcReportOut {
            begin: time(r.begin_at, r.state),
            end: time(r.end_at, r.state),
            received_at: to_rfc3339(r.received_at),
            id: r.id,
            tenant_id: r.tenant_id,
            domain_id: r.domain_id,
            state: r.state,
            reason: r.reason,
            domain: r.domain,
            org_name: r.org_name,
            email: r.email,
            report_id: r.report_id,
            policy: r.policy,
            messages: r.messages,
            records: r.records,
            skipped: r.skipped,
            sender: r.sender,
            size: r.size,
        })
        .collect())
}
