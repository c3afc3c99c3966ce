//! `bounce classify FILE…`: each message read and classified as the feedback listener
//! reads it (`feedback_intake::report_events`), one JSON line per recipient.

use std::path::PathBuf;

use anyhow::Context;

use crate::config::Config;

pub(super) fn classify(config: &Config, files: &[PathBuf]) -> anyhow::Result<()> {
    let feedback = config.feedback_settings()?;
    let now = ee_core::clock::Clock::System.now_ms();
    let mut unreadable = 0;
    for file in files {
        let raw = std::fs::read(file).with_context(|| format!("{}", file.display()))?;
        let name = file.display().to_string();
        // No key: a per-message return path is not looked for here.
        match ee_app::feedback_intake::report_events(&feedback.rules, b"", &raw, None, &name, now) {
            Ok(events) => {
                for e in events {
                    let line = serde_json::json!({
                        "file": name,
                        "kind": e.kind,
                        "class": e.class,
                        "category": e.category,
                        "recipient": e.recipient,
                        "code": e.reply.code,
                        "status": e.reply.status,
                        "diagnostic": e.reply.diagnostic,
                    });
                    println!("{line}");
                }
            }
            Err(e) => {
                unreadable += 1;
                println!(
                    "{}",
                    serde_json::json!({"file": name, "class": null, "error": e.to_string()})
                );
            }
        }
    }
    if unreadable > 0 {
        anyhow::bail!(
            "{unreadable} of {} files hold no bounce or report this reader knows",
            files.len()
        );
    }
    Ok(())
}
