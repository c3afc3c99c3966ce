//! `email-engine bounce classify`: the real binary reading DSN, ARF and free-text bounces
//! as the listener does, one JSON line per recipient; a deployment's rules file read first;
//! a file that holds no report, or a bad rules file, a clear message and a non-zero exit.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use serde_json::Value;
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_email-engine");

fn sample(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../mail/tests/data")
        .join(path)
}

async fn classify(
    files: &[PathBuf],
    rules: Option<&std::path::Path>,
) -> (bool, Vec<Value>, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("EE_DATA_DIR", dir.path())
        .arg("bounce")
        .arg("classify")
        .args(files);
    if let Some(rules) = rules {
        cmd.env("EE_FEEDBACK_RULES_FILE", rules);
    }
    let out = cmd.output().await.unwrap();
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (
        out.status.success(),
        lines,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn reports_are_classified_one_line_per_recipient() {
    let (ok, lines, err) = classify(
        &[
            sample("reports/dsn_verp.eml"),
            sample("reports/arf_01.eml"),
            sample("bounces-flufl/postfix_01.txt"),
        ],
        None,
    )
    .await;
    assert!(ok, "{err}");
    let of = |recipient: &str| {
        lines
            .iter()
            .find(|l| l["recipient"] == recipient)
            .cloned()
            .unwrap()
    };
    let gone = of("gone@example.org");
    assert_eq!(
        (gone["class"].as_str(), gone["category"].as_str()),
        (Some("hard"), Some("bad-mailbox"))
    );
    assert_eq!(gone["status"], "5.1.1");
    assert!(gone["file"].as_str().unwrap().ends_with("dsn_verp.eml"));
    assert_eq!(gone["recognised"], true);
    assert_eq!(gone["report"], "dsn");
    assert!(
        gone["why"].as_str().unwrap().contains("delivery status"),
        "{gone}"
    );
    // The rule that decided, where it is, so that an operator can audit and override it.
    assert_eq!(gone["rule"]["file"], "shipped");
    assert!(
        gone["rule"]["text"].as_str().unwrap().starts_with("hard"),
        "{gone}"
    );
    let line = gone["rule"]["line"].as_u64().unwrap() as usize;
    let shipped = include_str!("../../core/src/feedback/rules.txt");
    assert_eq!(
        shipped.lines().nth(line - 1).unwrap().trim(),
        gone["rule"]["text"].as_str().unwrap()
    );
    assert!(
        gone["reason"].as_str().unwrap().contains("suppressed"),
        "{gone}"
    );
    assert_eq!(of("full@example.org")["kind"], "deferred");
    assert_eq!(of("reader@mail.example.net")["class"], "complaint");
    assert_eq!(of("xxxxx@local.ie")["class"], "hard");

    // A deployment's rule wins over the shipped ones.
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.txt");
    std::fs::write(&rules, "soft inactive-mailbox text \"user unknown\"\n").unwrap();
    let (ok, lines, _) = classify(&[sample("reports/dsn_verp.eml")], Some(&rules)).await;
    assert!(ok);
    assert_eq!(lines[0]["class"], "soft", "{lines:?}");
    assert_eq!(lines[0]["rule"]["file"], "operator", "{lines:?}");
    assert_eq!(lines[0]["rule"]["line"], 1, "{lines:?}");

    // An out-of-office reply is recognised as one: nothing to act on.
    let auto = dir.path().join("auto.eml");
    std::fs::write(
        &auto,
        "From: Ann <ann@example.org>\r\nTo: b-x@bounces.example\r\nSubject: Out of office\r\n\
         Auto-Submitted: auto-replied\r\n\r\nBack on Monday.\r\n",
    )
    .unwrap();
    let (ok, lines, err) = classify(&[auto], None).await;
    assert!(ok, "{err}");
    assert_eq!(
        (lines[0]["kind"].as_str(), lines[0]["class"].as_str()),
        (Some("auto_reply"), Some("none")),
        "{lines:?}"
    );

    // What is no report, and a broken rules file, are named, with a non-zero exit.
    let (ok, lines, err) = classify(
        &[PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")],
        None,
    )
    .await;
    assert!(!ok);
    assert_eq!(lines[0]["recognised"], false, "{lines:?}");
    assert!(
        lines[0]["why"]
            .as_str()
            .unwrap()
            .contains("no delivery report"),
        "{lines:?}"
    );
    assert!(
        err.contains("1 of 1 files hold no bounce or report"),
        "{err}"
    );
    std::fs::write(&rules, "hard bad-mailbox\n").unwrap();
    let (ok, _, err) = classify(&[sample("reports/dsn_verp.eml")], Some(&rules)).await;
    assert!(!ok);
    assert!(
        err.contains("line 1: a rule needs at least one condition"),
        "{err}"
    );
}
