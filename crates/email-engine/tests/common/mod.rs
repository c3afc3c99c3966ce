//! What the tests of the real binary share: the binary, a command with a private data
//! directory (and the test database on PostgreSQL runs), running it, a free port.
#![allow(dead_code, clippy::unwrap_used)]

pub mod private_postgres;

use std::path::Path;

use ee_store::testing::TestDatabase;
use tokio::process::Command;

pub const BIN: &str = env!("CARGO_BIN_EXE_email-engine");

/// A command with a private data directory and, on PostgreSQL runs, the test database.
pub fn command(data_dir: &Path, db: &TestDatabase) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("EE_DATA_DIR", data_dir)
        .env("EE_LOG_FORMAT", "json")
        // Nothing listens there: no test ever queries the machine's (or any outside) DNS.
        .env("EE_DNS_SERVERS", "127.0.0.1:9")
        .env("EE_DNS_TIMEOUT_MS", "300")
        .kill_on_drop(true);
    if db.url.starts_with("postgres") {
        cmd.env("DATABASE_URL", &db.url);
    }
    cmd
}

pub async fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().await.expect("the binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (up to 30 s) until the server at `base` answers `/health`; panics, saying
/// `what`, if `child` exits first or the time runs out.
pub async fn wait_healthy(base: &str, child: &mut tokio::process::Child, what: &str) {
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if client
            .get(format!("{base}/health"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what}: exited early ({status})");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{what}: no answer on {base}/health");
}
