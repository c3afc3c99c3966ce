//! `bounce classify FILE…`: each message read and classified as the feedback listener
//! reads it (`feedback_intake::read_report`), one JSON line per recipient: recognised or
//! not and why, the family that wrote it, the class, category and reason, the rule that
//! decided (its file and line, so an operator can audit and override it), the codes and
//! the recipient.

use std::path::PathBuf;

use anyhow::Context;
use ee_core::feedback::{Class, EventKind};

use crate::config::Config;

pub(super) fn classify(config: &Config, files: &[PathBuf]) -> anyhow::Result<()> {
    let feedback = config.feedback_settings()?;
    let rules = &feedback.rules;
    let now = ee_core::clock::Clock::System.now_ms();
    let mut unreadable = 0;
    for file in files {
        let raw = std::fs::read(file).with_context(|| format!("{}", file.display()))?;
        let name = file.display().to_string();
        // No key: a per-message return path is not looked for here.
        match ee_app::feedback::intake::read_report(rules, b"", &raw, None, &name, now) {
            Ok(read) => {
                let report = &read.report;
                // What every line of this file says.
                let base = serde_json::json!({
                    "file": name,
                    "recognised": true,
                    "why": report.why,
                    "report": report.kind,
                    "family": report.family.as_str(),
                });
                let line = |fields: serde_json::Value| {
                    let mut line = base.clone();
                    if let (Some(line), serde_json::Value::Object(fields)) =
                        (line.as_object_mut(), fields)
                    {
                        line.extend(fields);
                    }
                    println!("{line}");
                };
                if read.events.is_empty() {
                    line(serde_json::json!({
                        "kind": "auto_reply",
                        "class": Class::NoEffect,
                        "category": null,
                        "reason": "an auto-reply: the message arrived; nothing to act on",
                        "rule": null,
                        "recipient": null,
                    }));
                }
                for e in read.events {
                    let rule = rules.matching(&e.reply);
                    line(serde_json::json!({
                        "kind": e.kind,
                        "class": e.class,
                        "category": e.category,
                        "reason": reason(e.kind, e.class, e.category.as_str()),
                        "rule": rule.map(|r| serde_json::json!({
                            "file": r.origin.as_str(),
                            "line": r.line,
                            "text": r.text,
                        })),
                        "code": e.reply.code,
                        "status": e.reply.status,
                        "recipient": e.recipient,
                        "diagnostic": e.reply.diagnostic,
                    }));
                }
            }
            Err(e) => {
                unreadable += 1;
                println!(
                    "{}",
                    serde_json::json!({
                        "file": name,
                        "recognised": false,
                        "why": format!("the message {e}"),
                        "class": null,
                    })
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

/// What a decision means for the address, in words.
fn reason(kind: EventKind, class: Class, category: &str) -> String {
    match (kind, class) {
        (EventKind::Deferred, _) => format!("delayed ({category}): the sender retries; no effect"),
        (_, Class::Hard) => format!("{category}: the address will not work; suppressed"),
        (_, Class::Soft) => {
            format!("{category}: may work later; counts towards the soft-bounce limit")
        }
        (_, Class::Block) => {
            format!("{category}: refused for the sender's sake; counts against the IP")
        }
        (_, Class::Complaint) => "a complaint: the address is suppressed".to_owned(),
        (_, Class::Delivered) => "delivered".to_owned(),
        (_, Class::NoEffect) => format!("{category}: no effect on the address or the IP"),
    }
}
