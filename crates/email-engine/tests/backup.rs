//! `backup` and `restore` through the real binary, on the database the run uses: a
//! running server's data backed up (encrypted to a passphrase, and to an age key),
//! restored into a fresh directory and database, served again with the same logins and
//! data, and its sealed DKIM key still the one the DNS record publishes (a signature made
//! with it verifies against the record).
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use ee_store::testing::TestDatabase;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

mod common;

use common::{command, free_port};

const PASSWORD: &str = "backup-admin-password";

/// Runs a command: whether it succeeded, and its output and errors together.
async fn run(cmd: &mut Command) -> (bool, String) {
    let (ok, out, err) = common::run(cmd).await;
    (ok, format!("{out}{err}"))
}

async fn serve(data_dir: &Path, db: &TestDatabase) -> (Child, String) {
    let port = free_port();
    let child = command(data_dir, db)
        .env("EE_ADMIN_PASSWORD", PASSWORD)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        if reqwest::get(format!("{base}/health"))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return (child, base);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server did not start");
}

async fn stop(mut child: Child) {
    let pid = child.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
}

async fn call(
    base: &str,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Value {
    let mut request = reqwest::Client::new().request(method, format!("{base}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

async fn login(base: &str) -> String {
    call(
        base,
        reqwest::Method::POST,
        "/api/v1/auth/login",
        None,
        Some(json!({"email": "admin@email-engine.local", "password": PASSWORD})),
    )
    .await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The `p=` of the domain's DKIM record.
async fn published_key(base: &str, token: &str) -> String {
    let domains = call(
        base,
        reqwest::Method::GET,
        "/api/v1/domains",
        Some(token),
        None,
    )
    .await;
    let id = domains["items"][0]["id"].as_str().unwrap().to_owned();
    let records = call(
        base,
        reqwest::Method::GET,
        &format!("/api/v1/domains/{id}/dns-records"),
        Some(token),
        None,
    )
    .await;
    let dkim = records["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "s1._domainkey.brand.test")
        .unwrap()["value"]
        .as_str()
        .unwrap()
        .to_owned();
    dkim.split("p=").nth(1).unwrap().trim().to_owned()
}

#[tokio::test]
async fn a_backup_restores_into_a_fresh_deployment_with_its_secrets_usable() {
    let work = tempfile::tempdir().unwrap();
    let (first, second) = (work.path().join("first"), work.path().join("second"));
    let db = TestDatabase::create().await.unwrap();
    let (server, base) = serve(&first, &db).await;
    let token = login(&base).await;
    let tenant = call(
        &base,
        reqwest::Method::POST,
        "/api/v1/tenants",
        Some(&token),
        Some(json!({"name": "Brand", "slug": "brand"})),
    )
    .await;
    call(
        &base,
        reqwest::Method::POST,
        "/api/v1/domains",
        Some(&token),
        Some(json!({"domain": "brand.test", "dkim_selector": "s1", "tenant_id": tenant["id"]})),
    )
    .await;
    let public = published_key(&base, &token).await;

    // Backed up while it runs: to a passphrase, and to an age public key.
    let passphrase = work.path().join("passphrase");
    std::fs::write(&passphrase, "correct horse battery staple\n").unwrap();
    let sealed = work.path().join("backup.age");
    let (ok, out) = run(command(&first, &db)
        .args(["backup", "--out"])
        .arg(&sealed)
        .arg("--passphrase-file")
        .arg(&passphrase))
    .await;
    assert!(ok, "{out}");
    let identity = age::x25519::Identity::generate();
    let identity_file = work.path().join("identity.txt");
    {
        use age::secrecy::ExposeSecret;
        std::fs::write(&identity_file, identity.to_string().expose_secret()).unwrap();
    }
    let to_key = work.path().join("backup-to-key.age");
    let (ok, out) = run(command(&first, &db)
        .args(["backup", "--out"])
        .arg(&to_key)
        .args(["--recipient", &identity.to_public().to_string()]))
    .await;
    assert!(ok, "{out}");
    let (ok, out) = run(command(&first, &db)
        .args(["backup", "--out"])
        .arg(work.path().join("plain")))
    .await;
    assert!(!ok && out.contains("must be encrypted"), "{out}");
    stop(server).await;
    use std::os::unix::fs::PermissionsExt as _;
    let bytes = std::fs::read(&sealed).unwrap();
    assert_eq!(
        std::fs::metadata(&sealed).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(bytes.starts_with(b"age-encryption.org/v1"));
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        !text.contains("brand.test") && !text.contains("PRIVATE KEY"),
        "nothing readable"
    );

    // Into a fresh directory and database: a wrong passphrase is refused, the right one
    // restores, and a second restore over it is refused without --force.
    let fresh = TestDatabase::create().await.unwrap();
    let wrong = work.path().join("wrong");
    std::fs::write(&wrong, "not the passphrase").unwrap();
    let (ok, out) = run(command(&second, &fresh)
        .arg("restore")
        .arg(&sealed)
        .arg("--passphrase-file")
        .arg(&wrong))
    .await;
    assert!(!ok && out.contains("wrong passphrase"), "{out}");
    let (ok, out) = run(command(&second, &fresh)
        .arg("restore")
        .arg(&sealed)
        .arg("--passphrase-file")
        .arg(&passphrase))
    .await;
    assert!(ok, "{out}");
    assert_eq!(
        std::fs::metadata(second.join("master.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let (ok, out) = run(command(&second, &fresh)
        .arg("restore")
        .arg(&sealed)
        .arg("--passphrase-file")
        .arg(&passphrase))
    .await;
    assert!(!ok && out.contains("--force"), "{out}");
    let (ok, out) = run(command(&second, &fresh)
        .arg("restore")
        .arg(&to_key)
        .arg("--identity")
        .arg(&identity_file)
        .arg("--force"))
    .await;
    assert!(ok, "the key-sealed backup restores too: {out}");

    // Served again: the same login, the same tenant and domain, the same DKIM key.
    let (server, base) = serve(&second, &fresh).await;
    let token = login(&base).await;
    let tenants = call(
        &base,
        reqwest::Method::GET,
        "/api/v1/tenants",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(tenants["items"][0]["slug"], "brand", "{tenants}");
    assert_eq!(published_key(&base, &token).await, public);
    stop(server).await;

    // The sealed private key opens with the restored master key, and signs what the
    // published key verifies.
    let out_dir = work.path().join("pmta");
    let (ok, out) = run(command(&second, &fresh)
        .args(["pmta", "config", "--out"])
        .arg(&out_dir))
    .await;
    assert!(ok, "{out}");
    let private = out_dir.join("dkim/brand.test.s1.pem");
    let message = work.path().join("message");
    std::fs::write(
        &message,
        "From: hello@brand.test\r\n\r\nsigned after a restore\r\n",
    )
    .unwrap();
    let signature = work.path().join("signature");
    let signed = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(&private)
        .arg("-out")
        .arg(&signature)
        .arg(&message)
        .status()
        .unwrap();
    assert!(signed.success());
    let wrapped: Vec<String> = public
        .as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    let public_pem = work.path().join("public.pem");
    std::fs::write(
        &public_pem,
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            wrapped.join("\n")
        ),
    )
    .unwrap();
    let verified = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(&public_pem)
        .arg("-signature")
        .arg(&signature)
        .arg(&message)
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
    assert!(String::from_utf8_lossy(&verified.stdout).contains("Verified OK"));
    fresh.drop_database().await.unwrap();
    db.drop_database().await.unwrap();
}
