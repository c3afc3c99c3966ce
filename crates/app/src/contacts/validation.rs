//! Contact validation: syntax and lists, the MX (cached), the optional SMTP probe, and
//! the job that validates new contacts.

use ee_store::Scope;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use ee_core::contacts::{
    self as rules, Checks, ExtraLists, Folding, MxOutcome, SmtpOutcome, Verdict,
};
use ee_store::StoreError;
use ee_store::contacts as store;
use ee_store::sources;
use serde::Serialize;
use serde_json::{Value, json};

use crate::contacts::tenant_rules;
use crate::{JobError, Services};

/// The MX outcome of a domain, from the cache while fresh (6 h when found, 1 h when not;
/// failures are not cached). An A/AAAA record stands in for a missing MX (RFC 5321 §5.1).
pub async fn mx_outcome(
    services: &Services,
    domain: &str,
    now: i64,
) -> Result<(MxOutcome, Vec<String>), StoreError> {
    let mut conn = services.db.pool().acquire().await?;
    if let Some((outcome, hosts)) = sources::cached_mx(&mut conn, domain, now).await? {
        let outcome = serde_json::from_value(Value::String(outcome)).unwrap_or(MxOutcome::Error);
        return Ok((outcome, serde_json::from_str(&hosts).unwrap_or_default()));
    }
    drop(conn);
    let (outcome, hosts) = match services.resolver.mx(domain).await {
        Ok(records) if records.len() == 1 && (records[0].1.is_empty() || records[0].1 == ".") => {
            (MxOutcome::NullMx, Vec::new())
        }
        Ok(records) if !records.is_empty() => (
            MxOutcome::Found,
            records.into_iter().map(|(_, h)| h).collect(),
        ),
        Ok(_) => implicit_mx(services, domain).await,
        Err(e) if e.is_absent() => implicit_mx(services, domain).await,
        Err(_) => (MxOutcome::Error, Vec::new()),
    };
    if outcome != MxOutcome::Error {
        let ttl = if outcome == MxOutcome::Found {
            6 * 3_600_000
        } else {
            3_600_000
        };
        let name = serde_json::to_value(outcome)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let mut conn = services.db.pool().acquire().await?;
        sources::cache_mx(
            &mut conn,
            domain,
            &name,
            &serde_json::to_string(&hosts).unwrap_or_default(),
            now + ttl,
        )
        .await?;
    }
    Ok((outcome, hosts))
}

async fn implicit_mx(services: &Services, domain: &str) -> (MxOutcome, Vec<String>) {
    match services.resolver.addresses(domain).await {
        Ok(addrs) if !addrs.is_empty() => (MxOutcome::Found, vec![domain.to_owned()]),
        Ok(_) => (MxOutcome::None, Vec::new()),
        Err(e) if e.is_absent() => (MxOutcome::None, Vec::new()),
        Err(_) => (MxOutcome::Error, Vec::new()),
    }
}

/// An RCPT probe at the first MX host: 2xx accepted, 5xx rejected, anything else inconclusive.
/// Nothing is sent: the dialogue ends after RCPT.
pub async fn smtp_probe(services: &Services, host: &str, address: &str) -> SmtpOutcome {
    let Ok(_permit) = services.probe.limit.acquire().await else {
        return SmtpOutcome::Inconclusive;
    };
    let ip: IpAddr = match host.parse() {
        Ok(ip) => ip,
        Err(_) => match services.resolver.addresses(host).await {
            Ok(addrs) if !addrs.is_empty() => addrs[0],
            _ => return SmtpOutcome::Inconclusive,
        },
    };
    // The domain is the contact's: its MX may point at an internal address.
    if services.outbound.check_ip(ip).is_err() {
        return SmtpOutcome::Inconclusive;
    }
    let builder = match mail_send::SmtpClientBuilder::new(ip.to_string(), services.probe.port) {
        Ok(b) => b
            .timeout(services.probe.timeout)
            .helo_host(services.probe.helo.clone()),
        Err(_) => return SmtpOutcome::Inconclusive,
    };
    let probe = async {
        let mut client = builder.connect_plain().await.ok()?;
        // A refused sender says nothing about the recipient.
        client
            .mail_from(&services.probe.mail_from, &Default::default())
            .await
            .ok()?;
        let verdict = client.rcpt_to(address, &Default::default()).await;
        let _ = client.quit().await;
        Some(verdict)
    };
    match tokio::time::timeout(services.probe.timeout * 3, probe).await {
        Ok(Some(Ok(()))) => SmtpOutcome::Accepted,
        Ok(Some(Err(mail_send::Error::UnexpectedReply(reply)))) if reply.code() >= 500 => {
            SmtpOutcome::Rejected
        }
        _ => SmtpOutcome::Inconclusive,
    }
}

/// Settings of the optional SMTP probe.
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    /// 25 in production; tests point it elsewhere.
    pub port: u16,
    pub timeout: Duration,
    pub helo: String,
    /// The reverse path: empty (the null sender, as bounces use) unless configured.
    pub mail_from: String,
    /// Probes at once, over all tenants.
    pub limit: std::sync::Arc<tokio::sync::Semaphore>,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        Self {
            port: 25,
            timeout: Duration::from_secs(10),
            helo: "localhost".into(),
            mail_from: String::new(),
            limit: std::sync::Arc::new(tokio::sync::Semaphore::new(4)),
        }
    }
}

/// The full result of checking one address.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Validation {
    pub email: String,
    /// valid, risky, invalid or unknown.
    pub status: Verdict,
    pub confidence: f64,
    pub reasons: Vec<String>,
    pub checks: Checks,
}

/// Checks an address: syntax and lists, MX (cached), and the SMTP probe when asked.
pub async fn validate_address(
    services: &Services,
    raw: &str,
    lists: &ExtraLists,
    folding: Folding,
    probe: bool,
    now: i64,
) -> Result<Validation, StoreError> {
    let email = match rules::normalize(raw, folding) {
        Ok(e) => e,
        Err(_) => {
            let checks = Checks {
                syntax: false,
                disposable: false,
                role: false,
                free: false,
                mx: None,
                smtp: None,
            };
            return Ok(Validation {
                email: raw.trim().to_owned(),
                status: Verdict::Invalid,
                confidence: 1.0,
                reasons: vec!["invalid_syntax".into()],
                checks,
            });
        }
    };
    let mut checks = rules::offline_checks(&email, lists);
    if checks.syntax && !checks.disposable {
        let domain = email.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
        let (mx, hosts) = mx_outcome(services, domain, now).await?;
        checks.mx = Some(mx);
        if probe
            && mx == MxOutcome::Found
            && let Some(host) = hosts.first()
        {
            checks.smtp = Some(smtp_probe(services, host, &email).await);
        }
    }
    let (status, confidence, reasons) = rules::verdict(&checks);
    Ok(Validation {
        email,
        status,
        confidence,
        reasons: reasons.into_iter().map(str::to_owned).collect(),
        checks,
    })
}

/// The validation job: checks a chunk of new contacts and records the result and a
/// VALIDATED event on each.
pub async fn validate_job(
    services: &Services,
    job: &ee_store::Job,
    now: i64,
) -> Result<Value, JobError> {
    let payload: Value = serde_json::from_str(&job.payload).map_err(|e| JobError(e.to_string()))?;
    let tenant_id = payload["tenant_id"]
        .as_str()
        .ok_or_else(|| JobError("payload has no tenant_id".into()))?;
    let ids: Vec<String> = serde_json::from_value(payload["contact_ids"].clone())
        .map_err(|e| JobError(e.to_string()))?;
    let mut conn = services.db.pool().acquire().await?;
    let rules = tenant_rules(&mut conn, tenant_id).await?;
    drop(conn);
    let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
    for id in ids {
        let mut conn = services.db.pool().acquire().await?;
        let contact = match store::get(&mut conn, &id, Scope::Tenant(tenant_id)).await {
            Ok(c) => c,
            Err(StoreError::NotFound) => continue,
            Err(e) => return Err(e.into()),
        };
        drop(conn);
        let v = validate_address(
            services,
            &contact.email,
            &rules.lists,
            Folding::default(),
            rules.smtp_probe,
            now,
        )
        .await?;
        let mut tx = services.db.begin().await?;
        store::set_validation(
            &mut tx,
            &id,
            v.status.as_str(),
            v.confidence,
            &json!(v.reasons),
            now,
        )
        .await?;
        store::add_event(
            &mut tx,
            tenant_id,
            &id,
            "VALIDATED",
            None,
            &json!({"status": v.status, "confidence": v.confidence, "reasons": v.reasons}),
            now,
        )
        .await?;
        tx.commit().await?;
        *counts.entry(v.status.as_str()).or_default() += 1;
    }
    Ok(json!(counts))
}

/// The shipped lists a tenant may add to.
const EXTENDABLE_LISTS: [&str; 3] = ["disposable", "free", "role"];
/// The most values a tenant may add to one list.
const MAX_LIST_VALUES: usize = 10_000;

/// Replaces a tenant's additions to a shipped list (`disposable`, `free` or `role`):
/// domains, or local parts for `role`, trimmed and lower-cased. Returns the tenant's id
/// and the values kept.
pub async fn set_list(
    w: &mut crate::write::Write,
    list: &str,
    tenant: Option<&str>,
    values: &[String],
) -> Result<(String, Vec<String>), crate::AppError> {
    if !EXTENDABLE_LISTS.contains(&list) {
        return Err(crate::AppError::NotFound("list"));
    }
    if values.len() > MAX_LIST_VALUES {
        return Err(crate::input::invalid("values", "at most 10 000 values"));
    }
    let values: Vec<String> = values
        .iter()
        .map(|v| v.trim().to_lowercase())
        .filter(|v| !v.is_empty())
        .collect();
    let tenant_id = w.tenant(tenant).await?;
    sources::set_list_entries(&mut w.tx, &tenant_id, list, &values).await?;
    w.record(crate::audit::Change {
        action: "validation_list.update",
        resource_type: "validation_list",
        resource_id: Some(list),
        tenant_id: Some(&tenant_id),
        before: None,
        after: Some(json!({"values": values})),
    })
    .await?;
    Ok((tenant_id, values))
}

/// The tenant's additions to the shipped lists (disposable, role, free).
pub async fn extra_lists(
    read: &mut crate::read::Read,
    tenant_id: &str,
) -> Result<ee_core::contacts::ExtraLists, crate::AppError> {
    Ok(sources::extra_lists(read.conn(), tenant_id).await?)
}
