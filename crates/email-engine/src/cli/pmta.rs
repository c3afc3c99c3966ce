//! `pmta config` and `pmta deploy`.

use anyhow::Context;
use ee_app::audit::Caller;
use ee_core::clock::Clock;

use super::files::{open_db, write_private};
use super::services::{self};
use crate::config::Config;

/// Services for a one-off PowerMTA command.
pub(super) async fn pmta_services(config: &Config) -> anyhow::Result<ee_app::Services> {
    let keys = crate::secrets::load_or_create(config)?;
    let sealer = services::sealer(&keys)?;
    let db = open_db(config).await?;
    services::build(config, &keys, sealer, db, Clock::System)
}

pub(super) async fn pmta_deploy(config: &Config) -> anyhow::Result<()> {
    let services = pmta_services(config).await?;
    let report = ee_app::delivery::powermta::deploy_audited(&services, &Caller::cli())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    services.db.close().await;
    for step in &report.steps {
        let mark = if step.ok { "ok  " } else { "FAIL" };
        println!(
            "{mark} {}{}",
            step.name,
            if step.detail.is_empty() {
                String::new()
            } else {
                format!(": {}", step.detail)
            }
        );
    }
    if !report.diff.is_empty() {
        println!("{}", report.diff);
    }
    match report.outcome {
        ee_connectors::pmta_deploy::Outcome::Deployed => {
            println!("deployed to {}", report.target);
            Ok(())
        }
        other => anyhow::bail!(
            "not deployed ({}): {}",
            other.as_str(),
            report.reason.unwrap_or_default()
        ),
    }
}

pub(super) async fn pmta_config(
    config: &Config,
    out: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let services = pmta_services(config).await?;
    let db = services.db.clone();
    let generated = ee_app::delivery::powermta::generate(&services, &services.pmta, out.is_some())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    db.close().await;
    match out {
        None => print!("{}", generated.config),
        Some(dir) => {
            let dkim = dir.join("dkim");
            std::fs::create_dir_all(&dkim)
                .with_context(|| format!("cannot create {}", dkim.display()))?;
            // The file holds the relay password: owner only, like the keys.
            write_private(&dir.join("config"), generated.config.as_bytes())?;
            for key in &generated.keys {
                write_private(&dkim.join(&key.file_name), key.pem.as_bytes())?;
            }
            println!(
                "wrote {} and {} DKIM key(s) in {}",
                dir.join("config").display(),
                generated.keys.len(),
                dkim.display()
            );
        }
    }
    Ok(())
}
