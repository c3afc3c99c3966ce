//! The services every front door needs, built in one place from the configuration.

use super::*;

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
    Ok(ee_app::Services {
        db,
        clock,
        alerts: config.alert_channels(),
        infra: config.infra_settings(),
        resolver: ee_dns::Resolver::new(&config.resolver_settings()?)
            .map_err(|e| anyhow::anyhow!("DNS resolver: {e}"))?,
        dnsbl_zones: config.dnsbl_zones(),
        probe: ee_app::validation::ProbeSettings {
            port: config.smtp_probe_port,
            mail_from: config.smtp_probe_from.clone(),
            helo: hostname(),
            ..Default::default()
        },
        delivery: config.delivery_settings(tracking_key(&keys.master_key), sealer)?,
        pmta: config.pmta_settings(&hostname()),
        outbound: std::sync::Arc::new(config.outbound_policy()?),
    })
}

/// The sealer of secrets at rest, checked at start so that a wrong master key fails now
/// rather than in a later job.
pub(super) fn sealer(keys: &crate::secrets::Keys) -> anyhow::Result<ee_core::secrets::Sealer> {
    ee_core::secrets::Sealer::new(&keys.master_key).map_err(|e| anyhow::anyhow!("master key: {e}"))
}
