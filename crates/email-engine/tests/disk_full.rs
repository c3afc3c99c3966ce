//! A SQLite deployment whose disk fills up: the real binary on a 24 MiB file system of its
//! own (a tmpfs in a private mount namespace), written to until the disk is nearly full.
//! Writes are then refused with `507 insufficient_storage` naming the free space, never a
//! 500; reads go on; once space is freed, writes are taken again; and the database file
//! is intact afterwards, holding exactly the writes that were answered 202.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{BIN, free_port, wait_healthy};
use serde_json::{Value, json};

const PASSWORD: &str = "admin-password-1234";

/// Counts and checks the database file once the server has stopped.
const AFTER: &str = r#"
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print(json.dumps({
    "integrity": db.execute("PRAGMA integrity_check").fetchone()[0],
    "messages": db.execute("SELECT COUNT(*) FROM messages").fetchone()[0],
}))
"#;

/// Stops the server however the test ends (it runs under a shell the test cannot reach
/// once it panics).
struct StopServer {
    pid_file: std::path::PathBuf,
    /// Until the test stops it itself.
    armed: bool,
}

impl Drop for StopServer {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Ok(pid) = std::fs::read_to_string(&self.pid_file) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", pid.trim()])
                .status();
        }
    }
}

async fn wait_for(path: &Path) {
    for _ in 0..600 {
        if path.exists() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} never appeared", path.display());
}

#[tokio::test]
async fn a_nearly_full_disk_refuses_writes_before_they_start() {
    fill_the_disk(4, "MiB free").await;
}

/// With no floor, SQLite itself finds the disk full mid-write: the same answer, and the
/// write rolled back.
#[tokio::test]
async fn a_disk_full_under_sqlite_refuses_the_write_and_keeps_the_database_intact() {
    fill_the_disk(0, "is full").await;
}

async fn fill_the_disk(min_free_mb: u32, says: &str) {
    let data = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let port = free_port();
    // The data directory becomes a 24 MiB tmpfs seen by this process tree only; 8 MiB of
    // it are taken by a file the test frees later.
    let script = format!(
        r#"set -e
mount -t tmpfs -o size=24m,mode=0700 tmpfs "$EE_DATA_DIR"
dd if=/dev/zero of="$EE_DATA_DIR/filler" bs=1M count=8 2>/dev/null
( while [ ! -f "$OUT/free" ]; do sleep 0.05; done; rm -f "$EE_DATA_DIR/filler"; touch "$OUT/freed" ) &
"$BIN" serve --role api --listen 127.0.0.1:{port} &
echo $! > "$OUT/pid"
wait $! || true
python3 -c "$AFTER" "$EE_DATA_DIR/email-engine.db" > "$OUT/after.json"
"#
    );
    let mut shell = tokio::process::Command::new("unshare");
    shell
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("BIN", BIN)
        .env("OUT", out.path())
        .env("AFTER", AFTER)
        .env("EE_DATA_DIR", data.path())
        .env("EE_ADMIN_PASSWORD", PASSWORD)
        .env("EE_LOG_FORMAT", "json")
        .env("EE_DNS_SERVERS", "127.0.0.1:9")
        .env("EE_MIN_FREE_DISK_MB", min_free_mb.to_string())
        .env("EE_RATE_LIMIT_PER_MINUTE", "100000")
        .env("EE_IP_RATE_LIMIT_PER_MINUTE", "100000")
        .stdout(Stdio::null())
        .stderr(
            std::env::var("EE_DISK_FULL_LOG")
                .ok()
                .and_then(|p| std::fs::File::create(format!("{p}.{min_free_mb}")).ok())
                .map_or_else(Stdio::null, Stdio::from),
        )
        .kill_on_drop(true);
    let mut child = shell.spawn().expect("unshare (util-linux) runs");
    let mut stop = StopServer {
        pid_file: out.path().join("pid"),
        armed: true,
    };
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    wait_healthy(
        &base,
        &mut child,
        "the server on its tmpfs (mount namespaces and tmpfs need root)",
    )
    .await;
    let call = |method: reqwest::Method, path: &str, key: &str, body: Option<Value>| {
        let mut request = client.request(method, format!("{base}{path}"));
        request = if key.starts_with("ee_") {
            request.header("X-API-KEY", key)
        } else {
            request.bearer_auth(key)
        };
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let r = request.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (_, login) = call(
        reqwest::Method::POST,
        "/api/v1/auth/login",
        "",
        Some(json!({"email": "admin@email-engine.local", "password": PASSWORD})),
    )
    .await;
    let admin = login["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{login}"))
        .to_owned();
    let (_, tenant) = call(
        reqwest::Method::POST,
        "/api/v1/tenants",
        &admin,
        Some(json!({"name": "Brand", "slug": "brand"})),
    )
    .await;
    let (_, key) = call(
        reqwest::Method::POST,
        "/api/v1/api-keys",
        &admin,
        Some(json!({"name": "send", "tenant_id": tenant["id"]})),
    )
    .await;
    let key = key["key"].as_str().unwrap().to_owned();
    let (status, _) = call(
        reqwest::Method::POST,
        "/api/v1/domains",
        &key,
        Some(json!({"domain": "brand.test", "dkim_selector": "s1", "dkim_algorithm": "ed25519"})),
    )
    .await;
    assert_eq!(status, 201);

    // Messages of half a megabyte until the disk is nearly full.
    let html = format!("<p>{}</p>", "Lorem ipsum dolor sit amet. ".repeat(18_000));
    let send = |i: usize| {
        call(
            reqwest::Method::POST,
            "/api/v2/messages",
            &key,
            Some(
                json!({"to": format!("r{i}@example.test"), "subject": "Hi", "html": html,
                        "from_email": "hello@brand.test"}),
            ),
        )
    };
    let mut accepted = 0;
    let mut refused = None;
    for i in 0..200 {
        match send(i).await {
            (202, _) => accepted += 1,
            (507, body) => {
                refused = Some(body);
                break;
            }
            (status, body) => panic!("message {i}: {status} {body}"),
        }
    }
    let refused = refused.expect("the disk filled up");
    assert!(accepted >= 5, "{accepted} accepted before the disk filled");
    assert_eq!(
        refused["error"]["code"], "insufficient_storage",
        "{refused}"
    );
    let said = refused["error"]["message"].as_str().unwrap();
    assert!(said.contains("disk") && said.contains(says), "{said}");
    // Still refused, and reads go on.
    assert_eq!(send(1_000).await.0, 507);
    let (status, list) = call(reqwest::Method::GET, "/api/v2/messages?limit=5", &key, None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["items"].as_array().unwrap().len(), 5);

    // Space is freed: writes are taken again.
    std::fs::write(out.path().join("free"), b"").unwrap();
    wait_for(&out.path().join("freed")).await;
    assert_eq!(send(2_000).await.0, 202);
    accepted += 1;

    // Stopped: the file is intact and holds what was accepted, no more, no less.
    let pid = std::fs::read_to_string(out.path().join("pid")).unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", pid.trim()])
        .status()
        .unwrap();
    assert!(killed.success());
    stop.armed = false;
    wait_for(&out.path().join("after.json")).await;
    let _ = child.wait().await;
    let after: Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("after.json")).unwrap())
            .unwrap();
    assert_eq!(after["integrity"], "ok", "{after}");
    assert_eq!(after["messages"], accepted, "{after}");
}
