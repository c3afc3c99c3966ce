//! `import`: a CSV file into a tenant, with a progress bar.

use anyhow::{Context, bail};
use ee_core::clock::Clock;
use ee_store::StoreError;

use super::admin::app_error;
use super::files::open_db;
use crate::config::Config;

pub(super) async fn import_csv(
    config: &Config,
    file: &std::path::Path,
    tenant: &str,
    source: Option<&str>,
    errors_out: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let size = std::fs::metadata(file)
        .with_context(|| format!("cannot read {}", file.display()))?
        .len();
    let db = open_db(config).await?;
    let mut conn = db.pool().acquire().await.map_err(StoreError::from)?;
    let tenant = ee_app::access::tenants::find(&mut conn, tenant)
        .await
        .map_err(app_error)?;
    let source = match source {
        Some(key) => Some(
            ee_app::sources::find(&mut conn, &tenant.id, key)
                .await?
                .with_context(|| format!("tenant {} has no data source {key:?}", tenant.slug))?,
        ),
        None => None,
    };
    let clock = Clock::System;
    let filename = file.file_name().map(|n| n.to_string_lossy().into_owned());
    let mut import = ee_store::imports::insert(
        &mut conn,
        &tenant.id,
        source.as_ref().map(|s| s.id.as_str()),
        filename.as_deref(),
        None,
        clock.now_ms(),
    )
    .await?;
    drop(conn);
    let bar = indicatif::ProgressBar::new(size);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg} ({eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let outcome = ee_app::sources::csv_import::run(
        &db,
        &mut import,
        source.as_ref(),
        file.to_path_buf(),
        || clock.now_ms(),
        |counts, lines, bytes| {
            bar.set_position(bytes);
            bar.set_message(format!(
                "{lines} lines: {} created, {} updated, {} duplicates, {} rejected",
                counts.created, counts.updated, counts.duplicate, counts.rejected
            ));
        },
    )
    .await;
    bar.finish_and_clear();
    import.finished_at = Some(clock.now_ms());
    let mut conn = db.pool().acquire().await.map_err(StoreError::from)?;
    let counts = match outcome {
        Ok(c) => {
            import.status = ee_core::contacts::ImportStatus::Done;
            ee_store::imports::update(&mut conn, &import).await?;
            c
        }
        Err(e) => {
            import.status = ee_core::contacts::ImportStatus::Failed;
            import.error = Some(e.clone());
            ee_store::imports::update(&mut conn, &import).await?;
            bail!("import failed: {e}");
        }
    };
    let errors = ee_store::imports::errors(&mut conn, &import.id).await?;
    if let Some(path) = errors_out {
        let mut out = std::fs::File::create(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        use std::io::Write as _;
        writeln!(out, "line,reason")?;
        for (line, reason) in &errors {
            writeln!(out, "{line},\"{}\"", reason.replace('"', "\"\""))?;
        }
    }
    println!(
        "import {}: {} lines, {} created, {} updated, {} duplicates, {} rejected ({}, delimiter {:?})",
        import.id,
        import.total,
        counts.created,
        counts.updated,
        counts.duplicate,
        counts.rejected,
        import.encoding.clone().unwrap_or_default(),
        import.delimiter.clone().unwrap_or_default()
    );
    Ok(())
}
