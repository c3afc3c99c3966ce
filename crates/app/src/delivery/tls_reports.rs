//! The daily SMTP TLS reports (RFC 8460): each past day's sessions of a tenant to a
//! recipient domain (counted by the delivery engine) reported to the destinations the
//! domain's `_smtp._tls` record names: by mail (DKIM-signed with the tenant's key, straight
//! to the destination's MX) or posted over HTTPS. One report per tenant, domain and day,
//! from the tenant as its own organisation: brands sharing this installation are not
//! shown to receivers as one sender. Run hourly: what could not be sent is tried again
//! at the next run, for `KEEP_DAYS`.

use std::collections::BTreeMap;
use std::time::Duration;

use ee_core::tls_rpt::{self, Destination, KEEP_DAYS, ReportState, Session};
use ee_mail::message::Signer;
use ee_mail::smtp::{Connection, Endpoint, Security};
use ee_mail::tls_report::TlsReport;
use ee_store::tls_reports::{self, Done};
use serde_json::{Value, json};

use crate::delivery::helo_default;
use crate::{JobError, Services};

/// Reports handled per run.
const PER_RUN: i64 = 200;
/// The longest address a report is mailed to.
const MAX_ADDRESS: usize = 254;

/// Who the reports of a tenant come from.
struct Sender {
    organization: String,
    /// The tenant's domain with a DKIM key, else this installation's host name.
    submitter: String,
    signer: Option<Signer>,
}

impl Sender {
    fn sender_address(&self) -> String {
        format!("tls-reports@{}", self.submitter)
    }
}

/// Sends the reports of past days; what became of them, by state.
pub async fn send_due(services: &Services) -> Result<Value, JobError> {
    let now = services.clock.now_ms();
    let today = tls_rpt::day_of(now);
    let mut conn = services.db.pool().acquire().await?;
    let due = tls_reports::pending(&mut conn, &today, PER_RUN).await?;
    drop(conn);
    let mut senders: BTreeMap<String, Sender> = BTreeMap::new();
    let mut tally: BTreeMap<&'static str, u64> = BTreeMap::new();
    for (tenant_id, domain, day) in due {
        if !senders.contains_key(&tenant_id) {
            let sender = sender_of(services, &tenant_id).await?;
            senders.insert(tenant_id.clone(), sender);
        }
        let sender = &senders[&tenant_id];
        let state = report_one(services, sender, (&tenant_id, &domain, &day), now).await?;
        *tally.entry(state.as_str()).or_default() += 1;
    }
    Ok(json!(tally))
}

async fn sender_of(services: &Services, tenant_id: &str) -> Result<Sender, JobError> {
    let mut conn = services.db.pool().acquire().await?;
    let tenant = ee_store::tenants::get(&mut conn, tenant_id).await?;
    let domains = ee_store::domains::list(&mut conn, ee_store::Scope::Tenant(tenant_id)).await?;
    for d in domains {
        let Some(key) =
            ee_store::domains::active_key_for(&mut conn, tenant_id, &d.domain_name).await?
        else {
            continue;
        };
        match crate::delivery::open_signer(&services.delivery, &key, &d.domain_name) {
            Ok(signer) => {
                return Ok(Sender {
                    organization: tenant.name,
                    submitter: d.domain_name,
                    signer: Some(signer),
                });
            }
            Err(e) => tracing::warn!(domain = %d.domain_name, error = %e, "no signer"),
        }
    }
    Ok(Sender {
        organization: tenant.name,
        submitter: helo_default(&services.delivery.public_url),
        signer: None,
    })
}

async fn report_one(
    services: &Services,
    sender: &Sender,
    (tenant_id, domain, day): (&str, &str, &str),
    now: i64,
) -> Result<ReportState, JobError> {
    let mut conn = services.db.pool().acquire().await?;
    let sessions = tls_reports::sessions(&mut conn, tenant_id, domain, day).await?;
    drop(conn);
    let (successful, failed) = totals(&sessions);
    let bounds = tls_rpt::day_bounds(day);
    let stale = bounds.is_none_or(|(start, _)| now / 1000 - start > (KEEP_DAYS + 1) * 86_400);
    let (mut state, destinations, detail) = match services.resolver.tls_rpt(domain).await {
        Ok(None) => (ReportState::NoRecord, String::new(), None),
        Err(e) => (
            ReportState::Failed,
            String::new(),
            Some(format!(
                "the _smtp._tls record of {domain} was not read: {e}"
            )),
        ),
        Ok(Some(destinations)) => {
            let (start, end) = bounds.unwrap_or((0, 0));
            let report_id = tls_rpt::report_id(day, domain, tenant_id);
            let contact = format!("postmaster@{}", sender.submitter);
            let header = ee_mail::tls_report::Header {
                organization: &sender.organization,
                contact: &contact,
                report_id: &report_id,
                start,
                end,
            };
            let report = ee_mail::tls_report::report(&header, &sessions);
            deliver(services, sender, domain, &report, &destinations).await
        }
    };
    if state == ReportState::Failed && stale {
        state = ReportState::Abandoned;
    }
    if let Some(why) = &detail {
        tracing::warn!(domain, day, error = %why, "TLS report not sent");
    }
    let mut conn = services.db.pool().acquire().await?;
    tls_reports::record(
        &mut conn,
        &Done {
            tenant_id,
            domain,
            day,
            state,
            destinations: &destinations,
            successful,
            failed,
            detail: detail.as_deref(),
            now,
        },
    )
    .await?;
    Ok(state)
}

/// Hands the report to every destination; `Sent` when one took it at least.
async fn deliver(
    services: &Services,
    sender: &Sender,
    domain: &str,
    report: &TlsReport,
    destinations: &[Destination],
) -> (ReportState, String, Option<String>) {
    let mut sent = Vec::new();
    let mut errors = Vec::new();
    for destination in destinations {
        let (name, result) = match destination {
            Destination::Mail(address) => (
                format!("mailto:{address}"),
                mail(services, sender, domain, report, address).await,
            ),
            Destination::Https(url) => (url.clone(), post(services, report, url).await),
        };
        match result {
            Ok(()) => sent.push(name),
            Err(e) => errors.push(format!("{name}: {e}")),
        }
    }
    let detail = Some(errors.join("; ")).filter(|e| !e.is_empty());
    if sent.is_empty() {
        (ReportState::Failed, String::new(), detail)
    } else {
        (ReportState::Sent, sent.join(" "), detail)
    }
}

async fn mail(
    services: &Services,
    sender: &Sender,
    domain: &str,
    report: &TlsReport,
    to: &str,
) -> Result<(), String> {
    let Some((_, to_domain)) = to.rsplit_once('@') else {
        return Err("not an address".into());
    };
    if to.len() > MAX_ADDRESS || to.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("not an address".into());
    }
    let from = sender.sender_address();
    let raw =
        ee_mail::tls_report::message(report, (domain, &sender.submitter), &from, &[to.to_owned()])
            .map_err(|e| e.to_string())?;
    let data = match &sender.signer {
        Some(signer) => signer.sign(&raw).map_err(|e| e.to_string())?,
        None => raw,
    };
    let mut hosts: Vec<String> = services
        .resolver
        .mx(to_domain)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|(_, host)| host)
        .filter(|h| !h.is_empty() && h != ".")
        .collect();
    if hosts.is_empty() {
        hosts.push(to_domain.to_owned());
    }
    let mut last = format!("no address for the MX hosts of {to_domain}");
    for host in hosts.iter().take(3) {
        let addresses = services.resolver.addresses(host).await.unwrap_or_default();
        // The destination is the receiver's to name: the outbound policy applies.
        let Some(address) = addresses
            .into_iter()
            .find(|a| services.outbound.check_ip(*a).is_ok())
        else {
            continue;
        };
        let endpoint = Endpoint {
            address: address.to_string(),
            port: services.delivery.mx_port,
            tls_name: host.clone(),
            security: Security::Opportunistic,
            credentials: None,
            local_ip: None,
            helo: helo_default(&services.delivery.public_url),
            timeout: services.delivery.timeout,
            allow_invalid_certs: true,
        };
        match Connection::open(&endpoint).await {
            Ok(mut c) => {
                let sent = c.send(&from, to, &data).await;
                c.quit().await;
                return sent.map(|_| ()).map_err(|e| e.to_string());
            }
            Err(e) => last = format!("{host}: {e}"),
        }
    }
    Err(last)
}

async fn post(services: &Services, report: &TlsReport, url: &str) -> Result<(), String> {
    use ee_connectors::tls_rpt::{Post, host_of, post_report};
    let (host, _) = host_of(url)?;
    let addresses = match host.parse() {
        Ok(literal) => vec![literal],
        Err(_) => services
            .resolver
            .addresses(&host)
            .await
            .map_err(|e| e.to_string())?,
    };
    let address = addresses
        .into_iter()
        .find(|a| services.outbound.check_ip(*a).is_ok())
        .ok_or_else(|| format!("{host} has no address we may connect to"))?;
    post_report(Post {
        url,
        address,
        extra_roots: &services.delivery.mta_sts_roots,
        timeout: Duration::from_secs(30),
        body: ee_mail::tls_report::gzip(report).map_err(|e| e.to_string())?,
    })
    .await
}

/// Sessions that succeeded and failed.
fn totals(sessions: &[(Session, u64)]) -> (u64, u64) {
    sessions.iter().fold((0, 0), |(ok, failed), (s, n)| {
        if s.outcome == tls_rpt::Outcome::Success {
            (ok + n, failed)
        } else {
            (ok, failed + n)
        }
    })
}

/// A day's TLS report to a domain, as the API shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct TlsReportOut {
    pub id: String,
    pub tenant_id: String,
    /// The recipient domain reported on.
    pub domain: String,
    /// The UTC day it covers (`2026-12-05`).
    pub day: String,
    pub state: ReportState,
    /// Where it went (`mailto:…`, `https://…`), when sent.
    pub destinations: Vec<String>,
    /// Sessions that succeeded and failed that day.
    pub successful: i64,
    pub failed: i64,
    /// Runs that tried to send it.
    pub attempts: i64,
    /// Why a destination did not take it.
    pub detail: Option<String>,
    pub updated_at: String,
}

/// Days of reports the API lists.
pub const LISTED_DAYS: i64 = 30;

/// The reports of the last `LISTED_DAYS` days, the latest day first.
pub async fn list(
    read: &mut crate::read::Read,
    now: i64,
) -> Result<Vec<TlsReportOut>, crate::AppError> {
    let (conn, scope) = read.parts();
    let since = tls_rpt::day_of(now - LISTED_DAYS * 86_400_000);
    Ok(tls_reports::list(conn, scope, &since)
        .await?
        .into_iter()
        .map(|r| TlsReportOut {
            state: r.state,
            destinations: r
                .destinations
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            updated_at: ee_core::timefmt::to_rfc3339(r.updated_at),
            id: r.id,
            tenant_id: r.tenant_id,
            domain: r.domain,
            day: r.day,
            successful: r.successful,
            failed: r.failed,
            attempts: r.attempts,
            detail: r.detail,
        })
        .collect())
}
