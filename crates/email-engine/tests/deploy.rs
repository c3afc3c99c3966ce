//! `deploy/`: the systemd units pass `systemd-analyze verify`; the install script lays
//! out a tree with the right modes and is safe to run twice; the nginx site, run by a real
//! nginx in front of the real binary, serves the API and the admin UI over TLS on one
//! host and only the tracking and unsubscribe paths on the tracking host.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

use common::{BIN, free_port};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A tool, or `None` when it is absent and not required (`EE_REQUIRE_DEPLOY_TOOLS=1`, as
/// CI sets, makes its absence a failure).
fn tool(path: &str) -> Option<&str> {
    if Path::new(path).exists() {
        return Some(path);
    }
    assert!(
        !std::env::var("EE_REQUIRE_DEPLOY_TOOLS").is_ok_and(|v| v == "1"),
        "EE_REQUIRE_DEPLOY_TOOLS=1 but {path} is missing"
    );
    eprintln!("skipped: {path} is not installed");
    None
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn the_units_verify() {
    let Some(analyze) = tool("/usr/bin/systemd-analyze") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for unit in [
        "email-engine.service",
        "email-engine-api.service",
        "email-engine-worker.service",
    ] {
        let text = std::fs::read_to_string(repo().join("deploy/systemd").join(unit)).unwrap();
        for wanted in [
            "User=email-engine",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "ReadWritePaths=/var/lib/email-engine",
        ] {
            assert!(text.contains(wanted), "{unit} lacks {wanted}");
        }
        // The installed binary's path, here the one under test.
        std::fs::write(
            dir.path().join(unit),
            text.replace("/usr/local/bin/email-engine", BIN),
        )
        .unwrap();
        let out = Command::new(analyze)
            .args(["verify", "--man=no"])
            .arg(dir.path().join(unit))
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{unit}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_install_script_lays_out_the_tree_and_runs_twice() {
    let root = tempfile::tempdir().unwrap();
    let install = |extra: &[&str]| {
        let out = Command::new("bash")
            .arg(repo().join("deploy/install.sh"))
            .args(["--binary", BIN, "--root"])
            .arg(root.path())
            .args(["--no-user", "--no-systemctl"])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    install(&[]);
    let r = root.path();
    assert_eq!(mode(&r.join("var/lib/email-engine")), 0o700);
    assert_eq!(mode(&r.join("etc/email-engine")), 0o750);
    assert_eq!(mode(&r.join("etc/email-engine/email-engine.env")), 0o640);
    assert_eq!(mode(&r.join("usr/local/bin/email-engine")), 0o755);
    for unit in [
        "email-engine.service",
        "email-engine-api.service",
        "email-engine-worker.service",
    ] {
        assert!(r.join("etc/systemd/system").join(unit).exists(), "{unit}");
    }
    // A second run keeps what the operator wrote and sets the modes again.
    let env = r.join("etc/email-engine/email-engine.env");
    std::fs::write(&env, "EE_PUBLIC_URL=https://t.example.com\n").unwrap();
    std::fs::set_permissions(
        r.join("var/lib/email-engine"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    install(&[]);
    assert_eq!(
        std::fs::read_to_string(&env).unwrap(),
        "EE_PUBLIC_URL=https://t.example.com\n"
    );
    assert_eq!(mode(&r.join("var/lib/email-engine")), 0o700);
    // Bad input is named, with a non-zero exit.
    let bad = Command::new("bash")
        .arg(repo().join("deploy/install.sh"))
        .args([
            "--binary",
            "/nonexistent/email-engine",
            "--no-user",
            "--no-systemctl",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no binary"));
}

fn curl(args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args(["-sk", "--max-time", "10", "-D", "-", "-o", "-"])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.to_owned(), body.to_owned())
}

#[tokio::test]
async fn nginx_serves_the_api_and_only_tracking_on_the_tracking_host() {
    let Some(nginx) = tool("/usr/sbin/nginx") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    // The real binary behind it.
    let app_port = free_port();
    let mut server = tokio::process::Command::new(BIN)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("EE_DATA_DIR", dir.join("data"))
        .env("EE_DNS_SERVERS", "127.0.0.1:9")
        .env("EE_ADMIN_PASSWORD", "deploy-admin-password")
        // nginx on 127.0.0.1 is the proxy; a client on 127.0.0.2 is a client.
        .env("EE_TRUSTED_PROXIES", "127.0.0.1")
        .args(["serve", "--listen", &format!("127.0.0.1:{app_port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if reqwest::get(format!("http://127.0.0.1:{app_port}/health"))
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A self-signed certificate for both names.
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=t.example.com",
            "-addext",
            "subjectAltName=DNS:t.example.com,DNS:mail-admin.example.com",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(made.success());
    // The site as shipped, pointed at this test's ports, certificate and snippet.
    let (http, https) = (free_port(), free_port());
    let snippet = dir.join("email-engine-proxy.conf");
    std::fs::copy(
        repo().join("deploy/nginx/email-engine-proxy.conf"),
        &snippet,
    )
    .unwrap();
    let mut site = std::fs::read_to_string(repo().join("deploy/nginx/email-engine.conf")).unwrap();
    for (from, to) in [
        (
            "server 127.0.0.1:8000;".to_owned(),
            format!("server 127.0.0.1:{app_port};"),
        ),
        ("listen 80;".to_owned(), format!("listen 127.0.0.1:{http};")),
        (
            "listen 443 ssl http2;".to_owned(),
            format!("listen 127.0.0.1:{https} ssl http2;"),
        ),
        (
            "/etc/nginx/snippets/email-engine-proxy.conf".to_owned(),
            snippet.display().to_string(),
        ),
    ] {
        assert!(site.contains(&from), "the site has {from}");
        site = site.replace(&from, &to);
    }
    site = site
        .lines()
        .filter(|l| !l.contains("listen [::]"))
        .collect::<Vec<_>>()
        .join("\n");
    for name in ["mail-admin.example.com", "t.example.com"] {
        site = site
            .replace(
                &format!("/etc/letsencrypt/live/{name}/fullchain.pem"),
                &cert.display().to_string(),
            )
            .replace(
                &format!("/etc/letsencrypt/live/{name}/privkey.pem"),
                &key.display().to_string(),
            );
    }
    std::fs::write(dir.join("site.conf"), site).unwrap();
    let d = dir.display();
    std::fs::write(
        dir.join("nginx.conf"),
        format!(
            "user root; daemon off; pid {d}/nginx.pid; error_log {d}/error.log;\nevents {{}}\n\
             http {{ access_log off; client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
             include {d}/site.conf; }}\n"
        ),
    )
    .unwrap();
    let conf = dir.join("nginx.conf");
    let checked = Command::new(nginx)
        .args(["-t", "-p"])
        .arg(dir)
        .arg("-c")
        .arg(&conf)
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "nginx -t: {}",
        String::from_utf8_lossy(&checked.stderr)
    );
    // Its output goes nowhere: a worker outliving the test must not hold the test's pipes.
    let proxy = std::process::Command::new(nginx)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stop = Nginx(proxy);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", https)).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let at = |host: &str, port: u16| format!("{host}:{port}:127.0.0.1");
    let admin = at("mail-admin.example.com", https);
    let tracking = at("t.example.com", https);

    // The admin host: the API, the UI, the login cookie marked Secure behind TLS.
    let (head, body) = curl(&[
        "--resolve",
        &admin,
        &format!("https://mail-admin.example.com:{https}/health"),
    ]);
    assert!(head.starts_with("HTTP/2 200"), "{head}");
    assert!(body.contains("\"status\""), "{body}");
    let (head, _) = curl(&[
        "--resolve",
        &admin,
        &format!("https://mail-admin.example.com:{https}/admin/"),
    ]);
    assert!(
        head.starts_with("HTTP/2 200") && head.contains("content-security-policy"),
        "{head}"
    );
    // From a client at 127.0.0.2 that forges an X-Forwarded-For entry of its own.
    let (head, _) = curl(&[
        "--resolve",
        &admin,
        "--interface",
        "127.0.0.2",
        "-H",
        "x-forwarded-for: 198.51.100.7",
        "-H",
        "content-type: application/json",
        "--data",
        r#"{"email": "admin@email-engine.local", "password": "deploy-admin-password"}"#,
        &format!("https://mail-admin.example.com:{https}/api/v1/auth/session"),
    ]);
    assert!(head.starts_with("HTTP/2 200"), "{head}");
    // The audit log names the client nginx saw, not nginx, nor the forged entry.
    let api = reqwest::Client::new();
    let token: serde_json::Value = api
        .post(format!("http://127.0.0.1:{app_port}/api/v1/auth/login"))
        .json(&serde_json::json!({"email": "admin@email-engine.local", "password": "deploy-admin-password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let audit: serde_json::Value = api
        .get(format!(
            "http://127.0.0.1:{app_port}/api/v1/audit/logs?action=auth.login"
        ))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let addresses: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["ip_address"].as_str())
        .collect();
    assert!(addresses.contains(&"127.0.0.2"), "{audit}");
    assert!(!addresses.contains(&"198.51.100.7"), "{audit}");
    assert!(
        head.to_lowercase().contains("set-cookie: ee_session=") && head.contains("; Secure"),
        "{head}"
    );
    let (head, _) = curl(&[
        "--resolve",
        &admin,
        &format!("https://mail-admin.example.com:{https}/metrics"),
    ]);
    assert!(
        head.starts_with("HTTP/2 404"),
        "metrics stay off the public host: {head}"
    );

    // The tracking host: tracking and unsubscribe reach the app; nothing else does.
    for path in [
        "/api/v1/tenants",
        "/admin/",
        "/docs",
        "/health",
        "/t/o/",
        "/openapi.json",
    ] {
        let (head, _) = curl(&[
            "--resolve",
            &tracking,
            &format!("https://t.example.com:{https}{path}"),
        ]);
        assert!(head.starts_with("HTTP/2 404"), "{path}: {head}");
        assert!(
            !head.to_lowercase().contains("x-request-id"),
            "{path} reached the app: {head}"
        );
    }
    for path in ["/t/o/not-a-token", "/t/c/not-a-token", "/u/not-a-token"] {
        let (head, _) = curl(&[
            "--resolve",
            &tracking,
            &format!("https://t.example.com:{https}{path}"),
        ]);
        assert!(
            head.to_lowercase().contains("x-request-id"),
            "{path} reaches the app: {head}"
        );
    }
    // Plain HTTP goes to HTTPS.
    let (head, _) = curl(&[
        "--resolve",
        &at("t.example.com", http),
        &format!("http://t.example.com:{http}/t/o/x"),
    ]);
    assert!(head.starts_with("HTTP/1.1 301"), "{head}");
    assert!(
        head.contains(&format!("Location: https://t.example.com:{http}/t/o/x"))
            || head.contains("Location: https://t.example.com/t/o/x"),
        "{head}"
    );

    drop(stop);
    let _ = server.kill().await;
}

/// Stops nginx as a service manager would (SIGQUIT: the master stops its workers and
/// exits), even when the test fails half-way.
struct Nginx(std::process::Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-QUIT", &self.0.id().to_string()])
            .status();
        for _ in 0..100 {
            if self.0.try_wait().is_ok_and(|s| s.is_some()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
