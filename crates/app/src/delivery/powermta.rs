//! The PowerMTA configuration from the database: which IPs may send (with today's warm-up
//! quota), their tenants, and the active DKIM key of each domain, rendered by
//! `ee_connectors::powermta`.

use ee_connectors::pmta_deploy::{self, KeyUpload, RemotePlan};
pub use ee_connectors::pmta_deploy::{Outcome, Report};
pub use ee_connectors::pmta_status::Status;
use ee_connectors::powermta::{DomainKey, Input, VirtualMta, render};
use ee_connectors::ssh::SshTarget;
use ee_core::ip::IpState;
use ee_store::Scope;
use ee_store::{StoreError, domains, ips, tenants};

use crate::Services;

/// Node settings of the generated file.
#[derive(Clone)]
pub struct PmtaSettings {
    pub postmaster: String,
    pub host_name: String,
    pub listeners: Vec<String>,
    pub smtp_user: Option<(String, String)>,
    /// Where PowerMTA reads the DKIM keys (`<dir>/<domain>.<selector>.pem`).
    pub dkim_dir: String,
    pub http_mgmt_port: u16,
    /// The PowerMTA host to deploy to; deploys are refused when absent.
    pub ssh: Option<SshTarget>,
    /// Paths and commands on that host (its `dkim_dir` is taken from above).
    pub remote: RemotePlan,
    /// PowerMTA's HTTP management address (`http://127.0.0.1:1983`), polled for status.
    pub status_url: Option<String>,
}

impl Default for PmtaSettings {
    fn default() -> Self {
        Self {
            postmaster: "postmaster@localhost".into(),
            host_name: "localhost".into(),
            listeners: vec!["0.0.0.0:2525".into()],
            smtp_user: None,
            dkim_dir: "/etc/pmta/dkim".into(),
            http_mgmt_port: 1983,
            ssh: None,
            remote: RemotePlan::default(),
            status_url: None,
        }
    }
}

impl std::fmt::Debug for PmtaSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PmtaSettings")
            .field("postmaster", &self.postmaster)
            .field("host_name", &self.host_name)
            .field("listeners", &self.listeners)
            .field("smtp_user", &self.smtp_user.as_ref().map(|u| &u.0))
            .field("dkim_dir", &self.dkim_dir)
            .field("ssh", &self.ssh.as_ref().map(SshTarget::describe))
            .field("remote", &self.remote)
            .field("status_url", &self.status_url)
            .finish()
    }
}

/// A DKIM private key to write next to the configuration (mode 0600).
pub struct KeyFile {
    /// The file name inside the DKIM directory.
    pub file_name: String,
    pub pem: String,
}

impl std::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFile")
            .field("file_name", &self.file_name)
            .field("pem", &"[redacted]")
            .finish()
    }
}

#[derive(Debug)]
pub struct Generated {
    pub config: String,
    /// Empty unless the keys were asked for.
    pub keys: Vec<KeyFile>,
}

#[derive(Debug, thiserror::Error)]
pub enum PmtaError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the DKIM key of {0} cannot be opened with this master key")]
    Key(String),
    #[error("no PowerMTA host to deploy to: set EE_PMTA_SSH_HOST")]
    NotConfigured,
    /// The deployment's audit entry could not be written.
    #[error(transparent)]
    Write(#[from] crate::AppError),
}

/// The configuration as the database says now. With `with_keys`, the DKIM private keys are
/// opened for writing beside it; without, the relay password is redacted (for display).
pub async fn generate(
    services: &Services,
    settings: &PmtaSettings,
    with_keys: bool,
) -> Result<Generated, PmtaError> {
    let now = services.clock.now_ms();
    let mut conn = services.db.acquire().await?;
    let all_tenants = tenants::list(&mut conn, Scope::All, 100_000, 0).await?;
    let slug_of = |id: &str| {
        all_tenants
            .iter()
            .find(|t| t.id == id)
            .map(|t| t.slug.clone())
    };
    let mut virtual_mtas = Vec::new();
    for ip in ips::list_all(&mut conn).await? {
        // Only IPs that may send get a virtual MTA; unassigned ones belong to no pool.
        let Some(tenant_slug) = ip.tenant_id.as_deref().and_then(slug_of) else {
            continue;
        };
        if !ip.state.selectable() {
            continue;
        }
        let daily_quota = if ip.state == IpState::Warming {
            crate::infra::quota(&mut conn, &ip, now)
                .await
                .ok()
                .and_then(|q| q.daily_quota)
        } else {
            None
        };
        virtual_mtas.push(VirtualMta {
            ip: ip.ip_address.clone(),
            hostname: ip.hostname.clone(),
            tenant_slug,
            daily_quota,
        });
    }
    let mut domain_keys = Vec::new();
    let mut keys = Vec::new();
    for domain in domains::list(&mut conn, Scope::All).await? {
        let Some(tenant_slug) = slug_of(&domain.tenant_id) else {
            continue;
        };
        let Some(key) =
            domains::active_key_for(&mut conn, &domain.tenant_id, &domain.domain_name).await?
        else {
            continue;
        };
        let file_name = format!("{}.{}.pem", domain.domain_name, key.selector);
        domain_keys.push(DomainKey {
            tenant_slug,
            domain: domain.domain_name.clone(),
            selector: key.selector.clone(),
            key_path: format!("{}/{file_name}", settings.dkim_dir.trim_end_matches('/')),
        });
        if with_keys {
            let pem = services
                .delivery
                .sealer
                .as_ref()
                .and_then(|s| {
                    s.open(ee_core::dkim::SEAL_PURPOSE, &key.private_key_sealed)
                        .ok()
                })
                .and_then(|p| String::from_utf8(p).ok())
                .ok_or_else(|| PmtaError::Key(domain.domain_name.clone()))?;
            keys.push(KeyFile { file_name, pem });
        }
    }
    keys.sort_by(|a, b| a.file_name.cmp(&b.file_name));
    let smtp_user = settings.smtp_user.clone().map(|(user, password)| {
        if with_keys {
            (user, password)
        } else {
            (user, "[redacted]".to_owned())
        }
    });
    let input = Input {
        postmaster: settings.postmaster.clone(),
        host_name: settings.host_name.clone(),
        listeners: settings.listeners.clone(),
        smtp_user,
        virtual_mtas,
        domain_keys,
        limits: services.delivery.limits.clone(),
        rates: services.delivery.rates.clone(),
        http_mgmt_port: settings.http_mgmt_port,
        ..Default::default()
    };
    Ok(Generated {
        config: render(&input),
        keys,
    })
}

/// Generates the configuration with its keys and deploys it to the PowerMTA host over SSH
/// (backup, validation, reload, status, rollback): the report, whatever the outcome.
pub async fn deploy(services: &Services, settings: &PmtaSettings) -> Result<Report, PmtaError> {
    let target = settings.ssh.as_ref().ok_or(PmtaError::NotConfigured)?;
    let generated = generate(services, settings, true).await?;
    let keys: Vec<KeyUpload<'_>> = generated
        .keys
        .iter()
        .map(|k| KeyUpload {
            file_name: &k.file_name,
            content: &k.pem,
        })
        .collect();
    let mut plan = settings.remote.clone();
    plan.dkim_dir = settings.dkim_dir.clone();
    // `20261121T101250Z`: sorts, and names the backup.
    let stamp: String = ee_core::timefmt::to_rfc3339(services.clock.now_ms())
        .chars()
        .take(19)
        .filter(|c| c.is_ascii_alphanumeric())
        .chain(std::iter::once('Z'))
        .collect();
    Ok(pmta_deploy::deploy(target, &plan, &generated.config, &keys, &stamp).await)
}

/// Deploys the configuration (see `deploy`) and records the attempt, whatever its outcome,
/// in the audit log with its report. The API and the CLI both deploy through this.
pub async fn deploy_audited(
    services: &Services,
    caller: &crate::audit::Caller,
) -> Result<Report, PmtaError> {
    let report = deploy(services, &services.pmta).await?;
    let w = crate::write::Write::open(&services.db, caller.clone(), None, services.clock.now_ms())
        .await?;
    let change = crate::audit::Change {
        action: "powermta.deploy",
        resource_type: "powermta",
        resource_id: Some(&report.target),
        tenant_id: None,
        before: None,
        after: serde_json::to_value(&report).ok(),
    };
    w.commit(change).await?;
    Ok(report)
}

/// The scheduled poll of PowerMTA's management interface: its status for `/metrics`, or
/// why it could not be read (and an alert). Not configured: says so.
pub async fn poll_status(
    services: &Services,
    now: i64,
) -> Result<serde_json::Value, crate::JobError> {
    use serde_json::json;
    let Some(url) = &services.pmta.status_url else {
        return Ok(json!({"configured": false}));
    };
    match ee_connectors::pmta_status::fetch(url, ee_connectors::pmta_status::POLL_TIMEOUT).await {
        Ok(status) => {
            Ok(json!({"configured": true, "reachable": true, "polled_at": now, "status": status}))
        }
        Err(e) => {
            let mut conn = services.db.pool().acquire().await?;
            crate::infra::alerts::raise(
                &mut conn,
                crate::infra::alerts::AlertSpec {
                    tenant_id: None,
                    cause: "pmta.unreachable",
                    severity: ee_core::alert::Severity::Critical,
                    title: "PowerMTA status unavailable",
                    message: &e.to_string(),
                },
                now,
            )
            .await?;
            Ok(
                json!({"configured": true, "reachable": false, "polled_at": now, "error": e.to_string()}),
            )
        }
    }
}

/// Why PowerMTA's status cannot be shown now.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("no PowerMTA management address configured: set EE_PMTA_STATUS_URL")]
    NotConfigured,
    /// PowerMTA did not answer as expected.
    #[error("{0}")]
    Unavailable(String),
}

/// PowerMTA's status now, read from its HTTP management interface (an operator's look;
/// nothing is recorded).
pub async fn status(services: &Services) -> Result<Status, StatusError> {
    let url = services
        .pmta
        .status_url
        .as_deref()
        .ok_or(StatusError::NotConfigured)?;
    ee_connectors::pmta_status::fetch(url, ee_connectors::pmta_status::POLL_TIMEOUT)
        .await
        .map_err(|e| StatusError::Unavailable(e.to_string()))
}
