//! The real binary: CLI commands, first run, and a restart that keeps all data.
#![allow(clippy::unwrap_used)]

use ee_store::Scope;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use ee_store::testing::TestDatabase;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

mod common;

use common::{command, free_port, run};

struct Server {
    child: Child,
    base: String,
    stdout_lines: Vec<String>,
}

async fn start(data_dir: &Path, db: &TestDatabase, extra_env: &[(&str, &str)]) -> Server {
    let port = free_port();
    let mut cmd = command(data_dir, db);
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("serve starts");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(r) = client.get(format!("{base}/health")).send().await
            && r.status().is_success()
        {
            let stdout = child.stdout.take().unwrap();
            let mut lines = BufReader::new(stdout).lines();
            let mut stdout_lines = Vec::new();
            while let Ok(Ok(Some(line))) =
                tokio::time::timeout(Duration::from_millis(300), lines.next_line()).await
            {
                stdout_lines.push(line);
            }
            return Server {
                child,
                base,
                stdout_lines,
            };
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("serve exited early: {status}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server did not become healthy");
}

impl Server {
    async fn stop(mut self) {
        // SIGTERM, as a service manager would send, then wait for the clean exit.
        let pid = self.child.id().expect("running").to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("stops in time")
            .unwrap();
        assert!(exit.success(), "clean shutdown: {exit}");
    }
}

async fn post(base: &str, path: &str, auth: Option<(&str, &str)>, body: Value) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(&body);
    if let Some((header, value)) = auth {
        request = request.header(header, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn get(base: &str, path: &str, header: &str, value: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .header(header, value)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn first_run_login_and_restart_keep_everything() {
    let db = TestDatabase::create().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    let server = start(&data, &db, &[]).await;
    let printed = server.stdout_lines.join("\n");
    let password = server
        .stdout_lines
        .iter()
        .find_map(|l| {
            l.trim()
                .strip_prefix("password:")
                .map(|p| p.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("the first run prints the admin password: {printed}"));
    assert!(printed.contains("admin@email-engine.local"));
    for file in ["jwt.key", "master.key"] {
        assert!(
            data.join(file).is_file(),
            "{file} generated in the data dir"
        );
    }
    if !db.url.starts_with("postgres") {
        assert!(
            data.join("email-engine.db").is_file(),
            "the default database is a SQLite file in the data dir"
        );
    }
    #[cfg(unix)]
    {
        // The data directory and everything in it (keys, the database and its -wal and
        // -shm files) are readable by their owner only.
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700, "the data directory");
        let mut files = 0;
        for entry in std::fs::read_dir(&data).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                files += 1;
                assert_eq!(mode(&path), 0o600, "{}", path.display());
            }
        }
        assert!(files >= 3, "keys and database files checked");
    }
    // /metrics lists every tenant's IPs and domains: only for the generated token.
    let metrics = |token: Option<String>| {
        let mut request = reqwest::Client::new().get(format!("{}/metrics", server.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let token = std::fs::read_to_string(data.join("metrics.token")).unwrap();
    assert_eq!(metrics(None).await, 401);
    assert_eq!(metrics(Some("wrong".into())).await, 401);
    assert_eq!(metrics(Some(token.trim().to_owned())).await, 200);
    let (status, tokens) = post(
        &server.base,
        "/api/v1/auth/login",
        None,
        json!({"email": "admin@email-engine.local", "password": password}),
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let access = format!("Bearer {}", tokens["access_token"].as_str().unwrap());
    let (status, tenant) = post(
        &server.base,
        "/api/v1/tenants",
        Some(("authorization", &access)),
        json!({"name": "SOS-Expat", "slug": "sos-expat"}),
    )
    .await;
    assert_eq!(status, 201, "{tenant}");
    let (status, key) = post(
        &server.base,
        "/api/v1/api-keys",
        Some(("authorization", &access)),
        json!({"name": "scraper", "tenant_id": tenant["id"]}),
    )
    .await;
    assert_eq!(status, 201);
    server.stop().await;

    let server = start(&data, &db, &[]).await;
    assert!(
        !server.stdout_lines.iter().any(|l| l.contains("password")),
        "the password is printed once only"
    );
    // The same access token still works: the signing key and the session were kept.
    let (status, tenants) = get(&server.base, "/api/v1/tenants", "authorization", &access).await;
    assert_eq!(status, 200);
    assert_eq!(tenants["items"][0]["slug"], "sos-expat");
    let (status, me) = get(
        &server.base,
        "/api/v1/auth/me",
        "x-api-key",
        key["key"].as_str().unwrap(),
    )
    .await;
    assert_eq!(
        (status, me["tenant_id"].clone()),
        (200, tenant["id"].clone())
    );
    let (status, _) = post(
        &server.base,
        "/api/v1/auth/login",
        None,
        json!({"email": "admin@email-engine.local", "password": password}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, audit) = get(
        &server.base,
        "/api/v1/audit/logs?action=tenant.create",
        "authorization",
        &access,
    )
    .await;
    assert_eq!(
        (status, audit["items"].as_array().map(Vec::len)),
        (200, Some(1))
    );
    server.stop().await;
    db.drop_database().await.unwrap();
}

#[tokio::test]
async fn cli_commands_create_what_the_api_then_serves() {
    let db = TestDatabase::create().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    let (ok, out, err) = run(command(&data, &db).arg("migrate")).await;
    assert!(ok, "{err}");
    assert!(out.contains("migrations applied"));
    let (ok, tenant_id, err) =
        run(command(&data, &db).args(["tenant", "create", "--name", "Ulixai", "--slug", "ulixai"]))
            .await;
    assert!(ok, "{err}");
    let (ok, out, err) = run(command(&data, &db).args([
        "user",
        "create",
        "--email",
        "Ops@Ulixai.test",
        "--tenant",
        "ulixai",
    ]))
    .await;
    assert!(ok, "{err}");
    let password = out
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .expect("generated password printed")
        .to_owned();
    let (ok, out, err) = run(command(&data, &db).args([
        "api-key",
        "create",
        "--tenant",
        "ulixai",
        "--name",
        "backlinks",
    ]))
    .await;
    assert!(ok, "{err}");
    let key = out
        .lines()
        .find_map(|l| l.strip_prefix("key: "))
        .expect("key printed")
        .to_owned();

    let server = start(&data, &db, &[("EE_ADMIN_PASSWORD", "given-admin-password")]).await;
    assert!(
        server.stdout_lines.is_empty(),
        "accounts exist: no first-run admin"
    );
    let (status, me) = get(&server.base, "/api/v1/auth/me", "x-api-key", &key).await;
    assert_eq!(
        (status, me["tenant_id"].as_str()),
        (200, Some(tenant_id.trim()))
    );
    let (status, tokens) = post(
        &server.base,
        "/api/v1/auth/login",
        None,
        json!({"email": "ops@ulixai.test", "password": password}),
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    server.stop().await;

    // Errors: one clear line on stderr and a non-zero exit.
    let failures: [&[&str]; 5] = [
        &["tenant", "create", "--name", "Dup", "--slug", "ulixai"],
        &["tenant", "create", "--name", "Bad", "--slug", "Not A Slug"],
        &[
            "api-key",
            "create",
            "--tenant",
            "no-such-tenant",
            "--name",
            "k",
        ],
        &["user", "create", "--email", "x@y.test", "--role", "user"],
        &[
            "api-key",
            "create",
            "--tenant",
            "ulixai",
            "--name",
            "k",
            "--expires-at",
            "soon",
        ],
    ];
    for args in failures {
        let (ok, _, err) = run(command(&data, &db).args(args)).await;
        assert!(!ok, "{args:?} should fail");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: {err}");
        assert!(lines[0].starts_with("error: "), "{err}");
    }
    let (ok, _, err) =
        run(command(&data, &db).args(["--config", "/nonexistent/ee.toml", "migrate"])).await;
    assert!(!ok && err.contains("does not exist"), "{err}");
    db.drop_database().await.unwrap();
}

#[tokio::test]
async fn every_command_has_help() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::create().await.unwrap();
    let commands: [&[&str]; 10] = [
        &["--help"],
        &["serve", "--help"],
        &["migrate", "--help"],
        &["user", "create", "--help"],
        &["tenant", "create", "--help"],
        &["api-key", "create", "--help"],
        &["api-key", "--help"],
        &["dkim", "generate", "--help"],
        &["check", "dns", "--help"],
        &["check", "blacklist", "--help"],
    ];
    for args in commands {
        let (ok, out, _) = run(command(dir.path(), &db).args(args)).await;
        assert!(ok && out.contains("Usage:"), "{args:?}: {out}");
    }
    let (_, serve_help, _) = run(command(dir.path(), &db).args(["serve", "--help"])).await;
    assert!(!serve_help.contains("later"), "{serve_help}");
    assert!(serve_help.contains("scheduler"), "{serve_help}");
    let (ok, _, err) = run(command(dir.path(), &db).arg("frobnicate")).await;
    assert!(!ok && err.contains("unrecognized subcommand"), "{err}");
    db.drop_database().await.unwrap();
}

#[tokio::test]
async fn dkim_generate_and_dns_and_blacklist_checks() {
    use ee_dns::testing::{Rec, TestDnsServer, Zone};
    let db = TestDatabase::create().await.unwrap();
    let dir = tempfile::tempdir().unwrap();

    let (ok, out, err) = run(command(dir.path(), &db).args([
        "dkim",
        "generate",
        "--algorithm",
        "ed25519",
        "--selector",
        "s1",
        "--domain",
        "brand.test",
    ]))
    .await;
    assert!(ok, "{err}");
    assert!(out.contains("-----BEGIN PRIVATE KEY-----"));
    let record_line = out
        .lines()
        .find(|l| l.starts_with("s1._domainkey.brand.test IN TXT "))
        .expect("the record to publish");
    let record = record_line
        .split_once(" IN TXT ")
        .unwrap()
        .1
        .trim_matches('"')
        .to_owned();
    assert!(record.starts_with("v=DKIM1; k=ed25519; p="));
    let public = record.rsplit_once("p=").unwrap().1.to_owned();
    let key_file = dir.path().join("s2.pem");
    let (ok, out, _) = run(command(dir.path(), &db)
        .args(["dkim", "generate", "--selector", "s2", "--out"])
        .arg(&key_file))
    .await;
    assert!(ok && !out.contains("PRIVATE KEY") && out.contains("k=rsa"));
    // The RSA record is printed as strings of at most 255 bytes, which BIND accepts.
    let rsa_line = out.lines().find(|l| l.contains(" IN TXT ")).unwrap();
    let strings: Vec<&str> = rsa_line
        .split_once(" IN TXT ")
        .unwrap()
        .1
        .split('"')
        .filter(|s| !s.trim().is_empty())
        .collect();
    assert!(strings.len() >= 2, "{rsa_line}");
    assert!(strings.iter().all(|s| s.len() <= 255), "{rsa_line}");
    assert!(strings.concat().starts_with("v=DKIM1; k=rsa; p="));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    let mut zone = Zone::new();
    zone.add("brand.test", Rec::txt("v=spf1 ip4:192.0.2.10 -all"))
        .add("brand.test", Rec::Mx(10, "mail.brand.test".into()))
        .add("s1._domainkey.brand.test", Rec::txt(&record))
        .add("_dmarc.brand.test", Rec::txt("v=DMARC1; p=quarantine"))
        .add("mail.brand.test", Rec::A("192.0.2.10".parse().unwrap()))
        .add(
            "10.2.0.192.in-addr.arpa",
            Rec::Ptr("mail.brand.test".into()),
        )
        .add(
            "10.2.0.192.bl.test.example",
            Rec::A("127.0.0.2".parse().unwrap()),
        );
    // Both lists pass their self-test; a third, closed like AHBL, lists everything.
    for list in [
        "bl.test.example",
        "dnsbl.test.example",
        "closed.test.example",
    ] {
        zone.add(
            &format!("2.0.0.127.{list}"),
            Rec::A("127.0.0.2".parse().unwrap()),
        );
    }
    for listed in ["1.0.0.127", "11.2.0.192"] {
        zone.add(
            &format!("{listed}.closed.test.example"),
            Rec::A("127.0.0.2".parse().unwrap()),
        );
    }
    let server = TestDnsServer::start(zone).await.unwrap();
    let dns = server.addr.to_string();
    let dkim = format!("s1={public}");

    let (ok, out, err) = run(command(dir.path(), &db).env("EE_DNS_SERVERS", &dns).args([
        "check",
        "dns",
        "brand.test",
        "--ip",
        "192.0.2.10=mail.brand.test",
        "--dkim",
        &dkim,
    ]))
    .await;
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("ok   SPF   192.0.2.10 -> pass") && out.contains("ok   DMARC quarantine"),
        "{out}"
    );
    let (ok, out, err) = run(command(dir.path(), &db).env("EE_DNS_SERVERS", &dns).args([
        "check",
        "dns",
        "brand.test",
        "--ip",
        "192.0.2.99",
        "--dkim",
        &dkim,
        "--json",
    ]))
    .await;
    assert!(
        !ok && err.trim() == "error: brand.test: DNS is incomplete",
        "{err}"
    );
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["spf"][0]["result"], "fail");
    let (ok, _, err) = run(command(dir.path(), &db).env("EE_DNS_SERVERS", &dns).args([
        "check",
        "dns",
        "unknown.test",
    ]))
    .await;
    assert!(!ok && err.contains("not registered here"), "{err}");

    let blacklist = |ip: &'static str| {
        let mut cmd = command(dir.path(), &db);
        cmd.env("EE_DNS_SERVERS", &dns)
            .env("EE_DNSBL_ZONES", "bl.test.example,dnsbl.test.example")
            .args(["check", "blacklist", ip]);
        cmd
    };
    let (ok, out, err) = run(&mut blacklist("192.0.2.10")).await;
    assert!(
        !ok && out.contains("LISTED 127.0.0.2") && err.contains("listed by bl.test.example"),
        "{out}{err}"
    );
    let (ok, out, _) = run(&mut blacklist("192.0.2.11")).await;
    assert!(ok && out.matches("clean").count() == 2, "{out}");
    // A list that lists its clean test address is not trusted: unknown, not listed.
    let (ok, out, err) = run(command(dir.path(), &db)
        .env("EE_DNS_SERVERS", &dns)
        .env("EE_DNSBL_ZONES", "bl.test.example,closed.test.example")
        .args(["check", "blacklist", "192.0.2.11"]))
    .await;
    assert!(!ok && !out.contains("LISTED"), "{out}{err}");
    assert!(out.contains("lists the clean test address"), "{out}");
    assert!(err.contains("1 of 2 lists could not be checked"), "{err}");
    // Unreachable DNS: unknown is not clean, and `check dns` says DNS is unreachable.
    let (ok, _, err) = run(command(dir.path(), &db)
        .env("EE_DNSBL_ZONES", "bl.test.example,dnsbl.test.example")
        .args(["check", "blacklist", "192.0.2.11"]))
    .await;
    assert!(
        !ok && err.contains("2 of 2 lists could not be checked"),
        "{err}"
    );
    let (ok, _, err) =
        run(command(dir.path(), &db).args(["check", "dns", "brand.test", "--ip", "192.0.2.10"]))
            .await;
    assert!(!ok && err.contains("DNS unreachable"), "{err}");
    let (ok, _, err) = run(&mut blacklist("nope")).await;
    assert!(
        !ok && err.lines().count() == 1 && err.contains("not an IP address"),
        "{err}"
    );
    let (ok, _, err) =
        run(command(dir.path(), &db).args(["dkim", "generate", "--algorithm", "dsa"])).await;
    assert!(!ok && err.contains("--algorithm"), "{err}");
    db.drop_database().await.unwrap();
}

#[tokio::test]
async fn cli_import_streams_a_csv_with_a_summary_and_an_error_report() {
    let db = TestDatabase::create().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (ok, _, err) =
        run(command(&data, &db).args(["tenant", "create", "--name", "SOS", "--slug", "sos"])).await;
    assert!(ok, "{err}");
    let csv = dir.path().join("contacts.csv");
    let mut body = String::from("email,first name,city,tags\n");
    for i in 0..2500 {
        body.push_str(&format!("p{i}@brand.test,P{i},Paris,TYPE:LAWYER\n"));
    }
    body.push_str("broken-address,X,Y,\np1@brand.test,,Lyon,\n");
    std::fs::write(&csv, body).unwrap();
    let report = dir.path().join("errors.csv");
    let (ok, out, err) = run(command(&data, &db)
        .args(["import"])
        .arg(&csv)
        .args(["--tenant", "sos", "--errors"])
        .arg(&report))
    .await;
    assert!(ok, "{err}");
    assert!(
        out.contains(
            "2502 lines, 2500 created, 0 updated, 1 duplicates, 1 rejected (utf-8, delimiter \",\")"
        ),
        "{out}"
    );
    let errors = std::fs::read_to_string(&report).unwrap();
    assert!(
        errors.starts_with("line,reason\n2502,\"invalid address"),
        "{errors}"
    );
    let (ok, _, err) =
        run(command(&data, &db).args(["import", "/nonexistent.csv", "--tenant", "sos"])).await;
    assert!(!ok && err.contains("cannot read /nonexistent.csv"), "{err}");
    let (ok, _, err) = run(command(&data, &db)
        .args(["import"])
        .arg(&csv)
        .args(["--tenant", "nope"]))
    .await;
    assert!(!ok && err.contains("no tenant"), "{err}");
    db.drop_database().await.unwrap();
}

/// Kills the server (SIGKILL) in the middle of a 10 000-message run and restarts it:
/// every recipient ends up with its message, and duplicates (messages accepted by the
/// peer but not yet marked sent when the process died) stay within the in-flight window
/// (two batches).
#[tokio::test]
async fn a_killed_sender_resumes_without_losing_messages() {
    use ee_dns::testing::{Rec, TestDnsServer, Zone};
    use ee_mail::testing::TestSmtpServer;

    const MESSAGES: usize = 10_000;
    const BATCH: usize = 200;
    let smtp = TestSmtpServer::start("127.0.0.1".parse().unwrap())
        .await
        .unwrap();
    let mut zone = Zone::new();
    zone.add("example.test", Rec::Mx(10, "mx.example.test".into()))
        .add("mx.example.test", Rec::A("127.0.0.1".parse().unwrap()));
    let dns = TestDnsServer::start(zone).await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let db = TestDatabase::create().await.unwrap();

    // The queue is filled through the library, on the database the server will use.
    let store = db.connect().await.unwrap();
    let clock = ee_core::clock::Clock::System;
    let mut conn = store.pool().acquire().await.unwrap();
    let tenant = ee_store::tenants::insert(
        &mut conn,
        ee_store::tenants::NewTenant {
            name: "Brand",
            slug: "brand",
            // No domain is set up: the messages go out unsigned.
            settings: r#"{"delivery":{"allow_unsigned_senders":true}}"#,
        },
        clock.now_ms(),
    )
    .await
    .unwrap();
    drop(conn);
    let services = ee_app::Services {
        // The MX host is on loopback: allowed, as an operator would allow a private one.
        outbound: std::sync::Arc::new(
            ee_core::outbound::OutboundPolicy::parse("127.0.0.0/8").unwrap(),
        ),
        ..ee_app::Services::new(
            store.clone(),
            clock.clone(),
            ee_dns::Resolver::new(&dns.resolver_settings()).unwrap(),
        )
    };
    for i in 0..MESSAGES {
        ee_app::queue::messages::queue(
            &services,
            ee_app::queue::messages::SendRequest {
                tenant_id: tenant.id.clone(),
                kind: ee_core::delivery::MessageKind::Transactional,
                to_email: format!("user{i}@example.test"),
                subject: Some("Hello [FNAME|friend]".into()),
                text: Some("A message for [EMAIL].".into()),
                from_email: Some("news@brand.test".into()),
                track_opens: Some(false),
                track_clicks: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }
    store.close().await;

    let dns_addr = dns.addr.to_string();
    let mx_port = smtp.addr.port().to_string();
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("EE_DNS_SERVERS", dns_addr.as_str()),
        ("EE_DELIVERY_MX_PORT", mx_port.as_str()),
        ("EE_DELIVERY_LEASE_SECS", "2"),
        ("EE_DELIVERY_BATCH", "200"),
        ("EE_DELIVERY_TIMEOUT_SECS", "5"),
        // The test MX host is on loopback, which the outbound policy refuses by default.
        ("EE_OUTBOUND_ALLOW", "127.0.0.0/8"),
    ];
    let mut server = start(data.path(), &db, &env).await;
    let waited = tokio::time::Instant::now();
    while smtp.received().len() < MESSAGES / 4 {
        assert!(
            waited.elapsed() < Duration::from_secs(300),
            "too slow: {} received",
            smtp.received().len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.child.kill().await.unwrap();
    let at_kill = smtp.received().len();
    assert!(at_kill < MESSAGES, "killed before the end");

    let server = start(data.path(), &db, &env).await;
    let store = db.connect().await.unwrap();
    let waited = tokio::time::Instant::now();
    loop {
        let mut conn = store.pool().acquire().await.unwrap();
        let counts = ee_store::messages::counts_by_state(&mut conn, Scope::All)
            .await
            .unwrap();
        drop(conn);
        let pending: i64 = counts
            .iter()
            .filter(|(state, _)| matches!(state.as_str(), "queued" | "sending" | "deferred"))
            .map(|(_, n)| n)
            .sum();
        if pending == 0 {
            assert_eq!(counts, vec![("sent".to_owned(), MESSAGES as i64)]);
            break;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(300),
            "still pending: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.stop().await;
    store.close().await;

    let received = smtp.received();
    let mut per_recipient = std::collections::HashMap::new();
    for r in &received {
        *per_recipient.entry(r.rcpt_to.clone()).or_insert(0) += 1;
    }
    assert_eq!(
        per_recipient.len(),
        MESSAGES,
        "every recipient got its message"
    );
    let duplicates = received.len() - MESSAGES;
    // Two batches are in flight at once (the next one sends while the last is recorded).
    let window = 2 * BATCH;
    println!(
        "killed after {at_kill} accepted messages; {duplicates} duplicate(s) after the restart (bound: {window})"
    );
    assert!(duplicates <= window, "{duplicates} duplicates");
    // A re-sent message is the same message: the same Message-ID.
    for (rcpt, n) in per_recipient.iter().filter(|(_, n)| **n > 1) {
        let ids: std::collections::HashSet<String> = received
            .iter()
            .filter(|r| &r.rcpt_to == rcpt)
            .map(|r| {
                let text = String::from_utf8_lossy(&r.data);
                text.lines()
                    .find(|l| l.starts_with("Message-ID:"))
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(ids.len(), 1, "{rcpt} got {n} copies with one Message-ID");
    }
}

/// `pmta config`: the file from the database, deterministic; `--out` writes it and the
/// DKIM keys readable by their owner only.
#[tokio::test]
async fn pmta_config_writes_the_file_and_private_keys() {
    use std::os::unix::fs::PermissionsExt;

    let db = TestDatabase::create().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (ok, _, err) =
        run(command(&data, &db).args(["tenant", "create", "--name", "SOS", "--slug", "sos-expat"]))
            .await;
    assert!(ok, "{err}");
    let (ok, out, err) = run(command(&data, &db).args([
        "api-key",
        "create",
        "--tenant",
        "sos-expat",
        "--name",
        "ops",
    ]))
    .await;
    assert!(ok, "{err}");
    let key = out
        .lines()
        .find_map(|l| l.strip_prefix("key: "))
        .unwrap()
        .to_owned();
    let server = start(&data, &db, &[]).await;
    for body in [
        json!({"ip": "46.62.168.55", "hostname": "mail1.sos-expat.com", "state": "active"}),
        json!({"ip": "46.62.168.56", "hostname": "mail2.sos-expat.com", "state": "warming"}),
    ] {
        let (status, reply) =
            post(&server.base, "/api/v1/ips", Some(("x-api-key", &key)), body).await;
        assert_eq!(status, 201, "{reply}");
    }
    let (status, reply) = post(
        &server.base,
        "/api/v1/domains",
        Some(("x-api-key", &key)),
        json!({"domain": "sos-expat.com", "dkim_selector": "s1"}),
    )
    .await;
    assert_eq!(status, 201, "{reply}");
    server.stop().await;

    let env = [
        ("EE_PMTA_SMTP_USER", "email-engine"),
        ("EE_PMTA_SMTP_PASSWORD", "relay-secret-1"),
        ("EE_PMTA_HOST_NAME", "mail.sos-holidays.com"),
        ("EE_PMTA_LISTENERS", "10.0.0.1:2525,10.0.0.2:2525"),
    ];
    let mut printed = command(&data, &db);
    printed.args(["pmta", "config"]);
    for (k, v) in env {
        printed.env(k, v);
    }
    let (ok, shown, err) = run(&mut printed).await;
    assert!(ok, "{err}");
    assert!(shown.contains("password [redacted]"), "{shown}");
    assert!(shown.contains("smtp-source-host 46.62.168.55 mail1.sos-expat.com"));
    assert!(shown.contains("domain-key s1,sos-expat.com,/etc/pmta/dkim/sos-expat.com.s1.pem"));
    assert!(shown.contains("<virtual-mta-pool pool-sos-expat>"));
    assert!(
        shown.contains("max-cold-virtual-mta-msg 100/day"),
        "seed 002's first warm-up day"
    );

    let out_dir = dir.path().join("pmta");
    let mut written = Vec::new();
    for _ in 0..2 {
        let mut cmd = command(&data, &db);
        cmd.args(["pmta", "config", "--out"]).arg(&out_dir);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let (ok, out, err) = run(&mut cmd).await;
        assert!(ok, "{err}");
        assert!(out.contains("1 DKIM key(s)"), "{out}");
        written.push(std::fs::read(out_dir.join("config")).unwrap());
    }
    assert_eq!(
        written[0], written[1],
        "the same database gives the same bytes"
    );
    let config = String::from_utf8(written[0].clone()).unwrap();
    assert!(config.contains("password relay-secret-1"));
    assert_eq!(
        config.replace("password relay-secret-1", "password [redacted]"),
        shown
    );
    let key_file = out_dir.join("dkim/sos-expat.com.s1.pem");
    let pem = std::fs::read_to_string(&key_file).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    for path in [&key_file, &out_dir.join("config")] {
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
    }

    // `pmta deploy` to a real sshd on loopback: deployed (exit 0), then refused by the
    // validation (non-zero, the running file kept); both in the audit log.
    let Some(host) = ee_connectors::testing::PmtaHost::start() else {
        return;
    };
    let target = host.sshd.target();
    let port = target.port.to_string();
    let identity = target.identity_file.clone().unwrap();
    let known_hosts = target.known_hosts.clone().unwrap();
    let deploy = || {
        let mut cmd = command(&data, &db);
        cmd.args(["pmta", "deploy"]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.env("EE_PMTA_SSH_HOST", "127.0.0.1")
            .env("EE_PMTA_SSH_PORT", &port)
            .env("EE_PMTA_SSH_USER", &target.user)
            .env("EE_PMTA_SSH_KEY", &identity)
            .env("EE_PMTA_SSH_KNOWN_HOSTS", &known_hosts)
            .env("EE_PMTA_CONFIG_PATH", &host.plan.config_path)
            .env("EE_PMTA_DKIM_DIR", &host.plan.dkim_dir)
            .env("EE_PMTA_VALIDATE_COMMAND", &host.plan.validate_command)
            .env("EE_PMTA_RELOAD_COMMAND", &host.plan.reload_command)
            .env("EE_PMTA_STATUS_COMMAND", &host.plan.status_command);
        cmd
    };
    let (ok, out, err) = run(&mut deploy()).await;
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("deployed to"), "{out}");
    assert!(!out.contains("relay-secret-1"), "{out}");
    let running = std::fs::read_to_string(&host.plan.config_path).unwrap();
    assert!(running.contains("password relay-secret-1"));
    let deployed_key = std::path::Path::new(&host.plan.dkim_dir).join("sos-expat.com.s1.pem");
    assert_eq!(std::fs::read_to_string(&deployed_key).unwrap(), pem);
    assert_eq!(host.reloads(), 1);

    std::fs::write(host.state.join("refuse-config"), "line 1: nope").unwrap();
    let (ok, _, err) = run(&mut deploy()).await;
    assert!(!ok);
    assert!(err.contains("not deployed (rejected)"), "{err}");
    assert!(err.contains("line 1: nope"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&host.plan.config_path).unwrap(),
        running
    );

    let url = if db.url.starts_with("postgres") {
        db.url.clone()
    } else {
        format!("sqlite://{}", data.join("email-engine.db").display())
    };
    let store = ee_store::Db::connect(&url, 1).await.unwrap();
    let audited: Vec<String> = sqlx::query_scalar(
        "SELECT changes FROM audit_logs WHERE action = 'powermta.deploy' ORDER BY created_at",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(audited.len(), 2);
    assert!(
        audited[0].contains("\"outcome\":\"deployed\""),
        "{}",
        audited[0]
    );
    assert!(
        audited[0].contains("+<virtual-mta vmta-46-62-168-55>"),
        "{}",
        audited[0]
    );
    assert!(
        audited[1].contains("\"outcome\":\"rejected\""),
        "{}",
        audited[1]
    );
    assert!(!audited.iter().any(|a| a.contains("relay-secret-1")));
    store.close().await;
}
