//! The README's walk-through, run as written (the block between its `walkthrough`
//! markers, with bash) against the real binary and a real SMTP server standing in for
//! PowerMTA: the campaign reaches the segment's two contacts, each in their language, and
//! the statistics the walk-through reads say so.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::process::Stdio;
use std::time::Duration;

use ee_mail::testing::TestSmtpServer;
use ee_store::testing::TestDatabase;

mod common;

use common::{BIN, free_port};

fn walkthrough() -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme
        .find("<!-- walkthrough:start -->")
        .expect("the README's walk-through");
    let end = readme.find("<!-- walkthrough:end -->").unwrap();
    let block = &readme[start..end];
    let code = block.split_once("```sh\n").unwrap().1;
    code.rsplit_once("```").unwrap().0.to_owned()
}

#[tokio::test]
async fn the_readme_walk_through_delivers_a_first_campaign() {
    let script = walkthrough();
    assert!(script.contains("/api/v2/campaigns") && script.contains("[UNSUBSCRIBE_URL]"));
    let smtp = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let db = TestDatabase::create().await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = tokio::process::Command::new(BIN);
    server
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("EE_DATA_DIR", data.path())
        .env("EE_ADMIN_PASSWORD", "walkthrough-password")
        // The relay is on loopback here; PowerMTA on a private network would be allowed so.
        .env("EE_OUTBOUND_ALLOW", "127.0.0.0/8")
        .env("EE_DNS_SERVERS", "127.0.0.1:9")
        .env("EE_DNS_TIMEOUT_MS", "200")
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    if db.url.starts_with("postgres") {
        server.env("DATABASE_URL", &db.url);
    }
    let mut server = server.spawn().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        if reqwest::get(format!("{base}/health")).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let file = data.path().join("walkthrough.sh");
    std::fs::write(&file, &script).unwrap();
    let out = tokio::time::timeout(
        Duration::from_secs(240),
        tokio::process::Command::new("bash")
            .args(["-euo", "pipefail"])
            .arg(&file)
            .env("EE", &base)
            .env("ADMIN_PASSWORD", "walkthrough-password")
            .env("RELAY_HOST", "127.0.0.1")
            .env("RELAY_PORT", smtp.addr.port().to_string())
            .output(),
    )
    .await
    .expect("the walk-through finishes")
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The records to publish were printed, the audience counted, the campaign started.
    assert!(
        stdout.contains("TXT s1._domainkey.news.sos-expat.com v=DKIM1"),
        "{stdout}"
    );
    // The IP comes before the records are printed: the SPF record authorises it.
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("TXT news.sos-expat.com v=spf1")
                && l.contains("ip4:203.0.113.10")),
        "{stdout}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines.contains(&"2"), "the audience count: {stdout}");
    assert!(lines.contains(&"sending"), "{stdout}");
    assert!(
        stdout.contains("'sent': 2"),
        "the statistics read at the end: {stdout}"
    );
    // The two lawyers got it, each in their language, signed, with an unsubscribe link.
    let mut received = smtp.received();
    received.sort_by_key(|m| m.rcpt_to.clone());
    let to: Vec<&str> = received.iter().map(|m| m.rcpt_to.as_str()).collect();
    assert_eq!(to, vec!["john@example.com", "marie@example.com"]);
    let john = String::from_utf8_lossy(&received[0].data).to_string();
    let marie = String::from_utf8_lossy(&received[1].data).to_string();
    assert!(john.contains("Subject: Hello John"), "{john}");
    assert!(marie.contains("Subject: Bonjour Marie"), "{marie}");
    for message in [&john, &marie] {
        assert!(
            message.contains("DKIM-Signature:") && message.contains("d=news.sos-expat.com"),
            "{message}"
        );
        assert!(message.contains("List-Unsubscribe:"), "{message}");
    }
    let _ = server.kill().await;
}
