//! DMARC aggregate reports received by mail (at the address every domain's DMARC record
//! names as `rua`): read within bounds (`ee_mail::dmarc_report`), attributed to the
//! tenant holding the report's domain and to nobody else (`ee_core::dmarc::attribute`:
//! never by a name the report writes), stored once per reporter and report id, with each
//! source IP marked as ours or not. A tenant's own IP failing DMARC raises an alert. What
//! cannot be attributed or read is kept for an administrator with why (capped, oldest
//! first): a report over a bound is also refused to its sender.

use std::collections::HashSet;
use std::net::IpAddr;

use ee_core::alert::Severity;
use ee_core::dmarc::{self, AggregateReport, Disposition, Holder, ReportState};
use ee_core::ids::new_id;
use ee_store::AnyConnection;
use ee_store::dmarc_reports::{self, NewRecord, NewReport};
use serde::Serialize;
use utoipa::ToSchema;

use crate::infra::alerts::{AlertSpec, raise};
use crate::{AppError, Services};

/// Reports kept without a tenant at most (unattributed or refused).
pub const UNATTRIBUTED_KEPT: i64 = 1_000;

/// What became of a report received.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct DmarcIntake {
    /// The stored report's id.
    pub id: String,
    pub state: ReportState,
    /// Why it was not attributed, or not read.
    pub reason: Option<String>,
    pub tenant_id: Option<String>,
    pub domain_id: Option<String>,
    /// Received before (same reporter, report id and domain): nothing stored again.
    pub duplicate: bool,
    /// Own IPs failing DMARC it raised an alert for.
    pub alerts: usize,
}

/// Reads, attributes and stores a report mailed to us by `sender` (the envelope's). A
/// report over a bound is kept as refused and answered `OverLimit`, so the listener
/// refuses it to its sender; one that is unreadable is kept as refused, with why.
pub async fn receive(
    services: &Services,
    raw: &[u8],
    sender: Option<&str>,
) -> Result<DmarcIntake, AppError> {
    let now = services.clock.now_ms();
    let report = match ee_mail::dmarc_report::read(raw) {
        Ok(report) => report,
        Err(e) => {
            let reason = format!("The report {e}.");
            let intake = keep_refused(services, raw, sender, &reason, now).await?;
            if e.is_over_limit() {
                let mut errors = ee_core::ValidationErrors::default();
                errors.add("report", e.to_string());
                return Err(AppError::OverLimit(errors));
            }
            return Ok(intake);
        }
    };
    let mut tx = services.db.begin().await?;
    let holders: Vec<Holder> = ee_store::domains::holders(&mut tx, &report.policy.domain)
        .await?
        .into_iter()
        .map(|(tenant_id, domain_id, ok)| Holder {
            tenant_id,
            domain_id,
            proven: ok == Some(1),
        })
        .collect();
    let (holder, reason) = match dmarc::attribute(&holders) {
        Ok(h) => (Some(h.clone()), None),
        Err(why) => (None, Some(format!("Not attributed: {why}."))),
    };
    let ours = match &holder {
        Some(h) => own_ips(&mut tx, &h.tenant_id).await?,
        None => HashSet::new(),
    };
    let records: Vec<NewRecord> = report
        .merged_records()
        .into_iter()
        .map(|r| NewRecord {
            own: ours.contains(&r.source_ip),
            source_ip: r.source_ip.to_string(),
            count: i64::try_from(r.count).unwrap_or(i64::MAX),
            disposition: r.disposition.as_str().to_owned(),
            dkim_aligned: r.dkim_aligned,
            spf_aligned: r.spf_aligned,
            header_from: r.header_from,
            envelope_from: r.envelope_from,
            dkim: results(&r.dkim),
            spf: results(&r.spf),
        })
        .collect();
    let id = new_id();
    let dedupe = dedupe_key(&report);
    let policy = policy_text(&report.policy);
    let state = if holder.is_some() {
        ReportState::Attributed
    } else {
        ReportState::Unattributed
    };
    let stored = dmarc_reports::insert(
        &mut tx,
        &NewReport {
            id: &id,
            tenant_id: holder.as_ref().map(|h| h.tenant_id.as_str()),
            domain_id: holder.as_ref().map(|h| h.domain_id.as_str()),
            state,
            reason: reason.as_deref(),
            domain: &report.policy.domain,
            org_name: &report.org_name,
            email: &report.email,
            report_id: &report.report_id,
            begin_at: report.begin.saturating_mul(1000),
            end_at: report.end.saturating_mul(1000),
            policy: &policy,
            messages: i64::try_from(report.messages()).unwrap_or(i64::MAX),
            skipped: i64::try_from(report.skipped).unwrap_or(i64::MAX),
            sender,
            size: i64::try_from(raw.len()).unwrap_or(i64::MAX),
            dedupe_key: Some(&dedupe),
            received_at: now,
        },
        &records,
    )
    .await?;
    let mut alerts = 0;
    match (&holder, stored) {
        (Some(h), true) => {
            for (ip, failed) in
                dmarc::summary::own_failures(&report.records, |ip| ours.contains(ip))
            {
                alert_own_failure(&mut tx, h, &report, (ip, failed), now).await?;
                alerts += 1;
            }
        }
        (None, true) => {
            dmarc_reports::cap_unattributed(&mut tx, UNATTRIBUTED_KEPT).await?;
        }
        (_, false) => {}
    }
    tx.commit().await?;
    tracing::info!(
        state = state.as_str(),
        domain = %report.policy.domain,
        reporter = %report.org_name,
        duplicate = !stored,
        "DMARC report received"
    );
    Ok(DmarcIntake {
        id,
        state,
        reason,
        tenant_id: holder.as_ref().map(|h| h.tenant_id.clone()),
        domain_id: holder.as_ref().map(|h| h.domain_id.clone()),
        duplicate: !stored,
        alerts,
    })
}

/// The IPs that count as the tenant's own: its IPs, and this installation's given to no
/// tenant (shared pools).
async fn own_ips(conn: &mut AnyConnection, tenant_id: &str) -> Result<HashSet<IpAddr>, AppError> {
    let all = ee_store::ips::list(conn, &ee_store::ips::IpFilter::default()).await?;
    Ok(all
        .into_iter()
        .filter(|ip| ip.tenant_id.as_deref().is_none_or(|t| t == tenant_id))
        .filter_map(|ip| ip.ip_address.parse().ok())
        .collect())
}

/// Results as stored: `brand.test=pass other.test=fail`.
fn results(list: &[dmarc::AuthResult]) -> String {
    list.iter()
        .map(|r| format!("{}={}", r.domain, r.result))
        .collect::<Vec<_>>()
        .join(" ")
}

fn policy_text(p: &dmarc::PolicyPublished) -> String {
    let mut parts = Vec::new();
    if let Some(v) = p.p {
        parts.push(format!("p={v}"));
    }
    if let Some(v) = p.sp {
        parts.push(format!("sp={v}"));
    }
    if let Some(v) = p.adkim {
        parts.push(format!("adkim={v}"));
    }
    if let Some(v) = p.aspf {
        parts.push(format!("aspf={v}"));
    }
    if let Some(v) = p.pct {
        parts.push(format!("pct={v}"));
    }
    parts.join("; ")
}

/// One report per reporter, report id and domain (a retried mail, a copy to two of our
/// addresses is stored once).
fn dedupe_key(r: &AggregateReport) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for part in [&r.org_name, &r.report_id, &r.policy.domain] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    format!("report:{}", hex::encode(&h.finalize()[..16]))
}

/// Keeps a mail that gave no report, with why (the same bytes twice are kept once).
async fn keep_refused(
    services: &Services,
    raw: &[u8],
    sender: Option<&str>,
    reason: &str,
    now: i64,
) -> Result<DmarcIntake, AppError> {
    let dedupe = {
        use sha2::Digest;
        format!("mail:{}", hex::encode(&sha2::Sha256::digest(raw)[..16]))
    };
    let id = new_id();
    let mut tx = services.db.begin().await?;
    let stored = dmarc_reports::insert(
        &mut tx,
        &NewReport {
            id: &id,
            tenant_id: None,
            domain_id: None,
            state: ReportState::Refused,
            reason: Some(reason),
            domain: "",
            org_name: "",
            email: "",
            report_id: "",
            begin_at: 0,
            end_at: 0,
            policy: "",
            messages: 0,
            skipped: 0,
            sender,
            size: i64::try_from(raw.len()).unwrap_or(i64::MAX),
            dedupe_key: Some(&dedupe),
            received_at: now,
        },
        &[],
    )
    .await?;
    if stored {
        dmarc_reports::cap_unattributed(&mut tx, UNATTRIBUTED_KEPT).await?;
    }
    tx.commit().await?;
    tracing::info!(%reason, "DMARC report refused");
    Ok(DmarcIntake {
        id,
        state: ReportState::Refused,
        reason: Some(reason.to_owned()),
        tenant_id: None,
        domain_id: None,
        duplicate: !stored,
        alerts: 0,
    })
}

/// One of the tenant's own IPs failed DMARC for the report's domain: its DKIM signing or
/// the domain's SPF record is wrong for that IP. Critical when the published policy has
/// receivers quarantine or reject what fails.
async fn alert_own_failure(
    conn: &mut AnyConnection,
    holder: &Holder,
    report: &AggregateReport,
    (ip, failed): (IpAddr, u64),
    now: i64,
) -> Result<(), AppError> {
    let domain = &report.policy.domain;
    let enforced = matches!(
        report.policy.p,
        Some(Disposition::Quarantine | Disposition::Reject)
    );
    let message = format!(
        "{failed} message(s) from {ip}, one of our own IPs, using {domain} failed DMARC \
         (neither DKIM nor SPF aligned) in the report of {} ({} to {}). Check that the \
         domain's DKIM key signs this IP's mail and that its SPF record names the IP.",
        report.org_name,
        ee_core::timefmt::to_rfc3339(report.begin.saturating_mul(1000)),
        ee_core::timefmt::to_rfc3339(report.end.saturating_mul(1000)),
    );
    raise(
        conn,
        AlertSpec {
            tenant_id: Some(&holder.tenant_id),
            cause: &format!("dmarc.own_ip_failing:{domain}:{ip}"),
            severity: if enforced {
                Severity::Critical
            } else {
                Severity::Warning
            },
            title: "Own IP failing DMARC",
            message: &message,
        },
        now,
    )
    .await?;
    Ok(())
}
