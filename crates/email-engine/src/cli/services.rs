//! The services every front door needs, built in one place from the configuration.

use ee_core::clock::Clock;
use ee_store::Db;

use crate::config::Config;

/// The services of this node: the database, the clock, alert channels, DNS, the SMTP
/// probe, the message pipeline (with the sealer that opens DKIM keys and relay passwords),
/// PowerMTA and the outbound policy.
pub(super) fn build(
    config: &Config,
    keys: &crate::secrets::Keys,
    sealer: ee_core::secrets::Sealer,
    db: Db,
    clock: Clock,
) -> anyhow::Result<ee_app::Services> {
    let resolver = ee_dns::Resolver::new(&config.resolver_settings()?)
        .map_err(|e| anyhow::anyhow!("DNS resolver: {e}"))?;
    Ok(ee_app::Services {
        alerts: config.alert_channels(),
        infra: config.infra_settings(),
        dnsbl_zones: config.dnsbl_zones(),
        probe: ee_app::contacts::validation::ProbeSettings {
            port: config.smtp_probe_port,
            mail_from: config.smtp_probe_from.clone(),
            helo: hostname(),
            ..Default::default()
        },
        delivery: config.delivery_settings(tracking_key(&keys.master_key), sealer)?,
        pmta: config.pmta_settings(&hostname()),
        outbound: std::sync::Arc::new(config.outbound_policy()?),
        feedback: config.feedback_settings()?,
        health: ee_app::infra::health::HealthSettings {
            data_dir: Some(config.data_dir.clone()),
            min_free_disk: config.health_min_free_disk,
            max_memory: config.health_max_memory,
            max_backlog: config.health_max_backlog,
        },
        ..ee_app::Services::new(db, clock, resolver)
    })
}

/// The sealer of secrets at rest, checked at start so that a wrong master key fails now
/// rather than in a later job.
pub(super) fn sealer(keys: &crate::secrets::Keys) -> anyhow::Result<ee_core::secrets::Sealer> {
    ee_core::secrets::Sealer::new(&keys.master_key).map_err(|e| anyhow::anyhow!("master key: {e}"))
}

/// The key of tracking and unsubscribe tokens: derived from the master key, so that
/// every node of a cluster signs and checks the same tokens.
pub(super) fn tracking_key(master_key: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    hasher.update(b"email-engine tracking tokens v1\0");
    hasher.update(master_key);
    hasher.finalize().to_vec()
}

pub(super) fn hostname() -> String {
    crate::config::host_name()
}
