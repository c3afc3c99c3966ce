//! The kill test: one API node and three worker nodes of the real binary on one
//! PostgreSQL database send a campaign to a real SMTP peer on loopback, while a random
//! worker is SIGKILLed at random points (and restarted each time). Nothing is lost; what
//! goes twice is at most what the dead node had handed over without recording it; the
//! dead node's messages move again within its lease (15 s) and a little; the campaign's
//! statistics end equal to what was delivered. The same campaign without a kill gives the
//! time to compare with.
//!
//! The CI runs 10 000 recipients and 3 kills. The full run:
//! `EE_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test EE_CLUSTER_RECIPIENTS=100000
//!  EE_CLUSTER_KILLS=10 cargo test --release -p email-engine --test cluster -- --nocapture`
//! It needs PostgreSQL (several nodes share one database only there); on SQLite it says so
//! and checks nothing.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{BIN, free_port, wait_healthy};
use ee_dns::testing::{Rec, TestDnsServer, Zone};
use ee_mail::testing::TestSmtpServer;
use ee_store::Db;
use ee_store::testing::TestDatabase;
use rand::Rng;
use serde_json::{Value, json};
use tokio::process::Child;

const ADMIN: &str = "admin@example.test";
const PASSWORD: &str = "admin-password-1234";
/// The default lease, and how much later than its end the dead node's messages must move.
const LEASE_SECS: u64 = 15;
const RECOVERY_BOUND_SECS: f64 = 20.0;

/// The tests here run one at a time: each runs four nodes, and two runs side by side on
/// two cores would measure each other.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The nodes' shared secrets (every node must open what another sealed).
struct Secrets {
    master_key: String,
    jwt_secret: String,
    /// The name server the nodes ask (a real one on loopback, with the recipients' MX).
    dns: String,
    database_url: String,
}

fn node(data: &Path, secrets: &Secrets, name: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("EE_DATA_DIR", data)
        .env("EE_LOG_FORMAT", "json")
        .env("EE_DNS_TIMEOUT_MS", "300")
        .env("DATABASE_URL", &secrets.database_url)
        .kill_on_drop(true);
    cmd.env("EE_MASTER_KEY", &secrets.master_key)
        .env("EE_JWT_SECRET", &secrets.jwt_secret)
        .env("EE_ADMIN_EMAIL", ADMIN)
        .env("EE_ADMIN_PASSWORD", PASSWORD)
        .env("EE_OUTBOUND_ALLOW", "127.0.0.0/8")
        .env("EE_NODE_NAME", name)
        .env("EE_DNS_SERVERS", &secrets.dns)
        .env("EE_LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // EE_CLUSTER_LOGS=<dir>: each node's log there, at info.
    if let Ok(dir) = std::env::var("EE_CLUSTER_LOGS") {
        let file = std::fs::File::create(Path::new(&dir).join(format!("{name}.log"))).unwrap();
        cmd.env("EE_LOG_LEVEL", "info").stderr(file);
    }
    cmd
}

struct Worker {
    name: String,
    child: Child,
    _data: tempfile::TempDir,
}

fn start_worker(secrets: &Secrets, name: String) -> Worker {
    let data = tempfile::tempdir().unwrap();
    let child = node(data.path(), secrets, &name)
        .args(["serve", "--role", "worker"])
        .spawn()
        .expect("a worker node starts");
    Worker {
        name,
        child,
        _data: data,
    }
}

struct Api {
    base: String,
    client: reqwest::Client,
    token: String,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, key: &str, body: Value) -> Value {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        request = if key.starts_with("ee_") {
            request.header("X-API-KEY", key)
        } else {
            request.bearer_auth(key)
        };
        let response = request.json(&body).send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    async fn post(&self, path: &str, key: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, key, body).await
    }
}

/// What one run came to.
#[derive(Debug)]
struct Report {
    recipients: u64,
    delivered: u64,
    lost: u64,
    duplicates: u64,
    /// Per kill: messages the dead node held, those of them the peer had accepted (what
    /// may go twice), and the seconds until none was held by the dead node any more.
    kills: Vec<(usize, usize, f64)>,
    /// The database restart: messages the peer accepted while it was away, and how long.
    outage: Option<(usize, f64)>,
    seconds: f64,
    stats_sent: i64,
}

/// The message id of a received message, from its signed `X-EE-Ref: <id>-<tag>`.
fn message_of(data: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(data);
    let head = text.split("\r\n\r\n").next()?;
    let value = head.lines().find_map(|l| {
        l.strip_prefix("X-EE-Ref:")
            .or_else(|| l.strip_prefix("x-ee-ref:"))
    })?;
    let (id, _tag) = value.trim().rsplit_once('-')?;
    Some(id.to_owned())
}

/// The peer's tally: how many times each message was accepted.
struct Tally {
    seen: usize,
    counts: HashMap<String, u32>,
}

impl Tally {
    fn update(&mut self, smtp: &TestSmtpServer) {
        let new = smtp.received_since(self.seen, |r| message_of(&r.data));
        self.seen += new.len();
        for id in new {
            *self
                .counts
                .entry(id.expect("every message carries X-EE-Ref"))
                .or_default() += 1;
        }
    }
}

async fn held_by(db: &Db, node: &str) -> Vec<String> {
    let mut conn = db.pool().acquire().await.unwrap();
    sqlx::query_scalar("SELECT id FROM messages WHERE state = 'sending' AND lease_token LIKE $1")
        .bind(format!("{node}:%"))
        .fetch_all(&mut *conn)
        .await
        .unwrap()
}

/// What goes wrong during a run.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// This many workers SIGKILLed (and restarted) at random points.
    Kills(usize),
    /// The PostgreSQL server (a private one) stopped for a few seconds, then started.
    PostgresRestart,
}

/// The database of a run: a fresh one on the test server, or a private server.
enum Database {
    Shared(TestDatabase),
    Private(common::private_postgres::PrivatePostgres),
}

impl Database {
    fn url(&self) -> String {
        match self {
            Database::Shared(db) => db.url.clone(),
            Database::Private(pg) => pg.url(),
        }
    }
}

/// Asks until the database answers (it may be restarting).
async fn campaign_status(db: &Db, id: &str) -> Option<String> {
    let mut conn = db.pool().acquire().await.ok()?;
    sqlx::query_scalar("SELECT status FROM campaigns WHERE id = $1")
        .bind(id)
        .fetch_one(&mut *conn)
        .await
        .ok()
}

async fn run(recipients: u64, fault: Fault, rng: &mut impl Rng) -> Report {
    let database = match fault {
        Fault::Kills(_) => Database::Shared(TestDatabase::create().await.unwrap()),
        Fault::PostgresRestart => {
            Database::Private(common::private_postgres::PrivatePostgres::start().await)
        }
    };
    let db = Db::connect(&database.url(), 4).await.unwrap();
    db.migrate().await.unwrap();
    let smtp = TestSmtpServer::start("127.0.0.1".parse().unwrap())
        .await
        .unwrap();
    let mut zone = Zone::new();
    zone.add("example.test", Rec::Mx(10, "mx.example.test".into()))
        .add("mx.example.test", Rec::A(std::net::Ipv4Addr::LOCALHOST));
    let dns = TestDnsServer::start(zone).await.unwrap();
    let mut key = [0u8; 32];
    rand::fill(&mut key[..]);
    let secrets = Secrets {
        master_key: base64::engine::general_purpose::STANDARD.encode(key),
        jwt_secret: "cluster-test-secret-cluster-test-secret".into(),
        dns: dns.addr.to_string(),
        database_url: database.url(),
    };

    // The API node.
    let api_data = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut api_node = node(api_data.path(), &secrets, "api")
        .args([
            "serve",
            "--role",
            "api",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .spawn()
        .expect("the API node starts");
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    wait_healthy(&base, &mut api_node, "the API node").await;
    let login: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": ADMIN, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let api = Api {
        base,
        client,
        token: login["access_token"].as_str().unwrap().to_owned(),
    };

    // A tenant relaying to the peer, signing with Ed25519, with one template.
    let tenant = api
        .post(
            "/api/v1/tenants",
            &api.token,
            json!({"name": "Brand", "slug": "brand"}),
        )
        .await;
    let tenant_id = tenant["id"].as_str().unwrap().to_owned();
    let key = api
        .post(
            "/api/v1/api-keys",
            &api.token,
            json!({"name": "send", "tenant_id": tenant_id}),
        )
        .await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    api.post(
        "/api/v1/domains",
        &key,
        json!({"domain": "brand.test", "dkim_selector": "s1", "dkim_algorithm": "ed25519"}),
    )
    .await;
    api.post(
        "/api/v1/relays",
        &key,
        json!({"name": "sink", "host": "127.0.0.1", "port": smtp.addr.port(), "tls": "none"}),
    )
    .await;
    api.call(
        reqwest::Method::PUT,
        "/api/v1/tenants/brand/delivery",
        &key,
        json!({"mode": "relay", "relay": "sink"}),
    )
    .await;
    let template = api
        .post(
            "/api/v2/templates",
            &key,
            json!({"name": "news", "subject": "Bonjour [FNAME|ami]", "language": "fr",
                   "html": "<p>Bonjour [FNAME],</p><p><a href=\"https://brand.test/offre\">L'offre</a> · <a href=\"[UNSUBSCRIBE_URL]\">Se désinscrire</a></p>",
                   "category": "news", "from_email": "hello@brand.test"}),
        )
        .await;
    // The audience, written by the database (an import is not what is tested here).
    {
        let mut conn = db.pool().acquire().await.unwrap();
        let now = ee_core::clock::Clock::System.now_ms();
        sqlx::query(
            "WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < $1 - 1) \
             INSERT INTO contacts (id, tenant_id, email, email_hash, first_name, language, \
             status, created_at, updated_at) \
             SELECT 'c' || CAST(10000000 + i AS TEXT), $2, 'user' || CAST(i AS TEXT) || '@example.test', \
             'h' || CAST(i AS TEXT), 'Prénom' || CAST(i AS TEXT), 'fr', 'active', $3, $3 FROM seq",
        )
        .bind(recipients as i64)
        .bind(&tenant_id)
        .bind(now)
        .execute(&mut *conn)
        .await
        .unwrap();
    }
    let campaign = api
        .post(
            "/api/v2/campaigns",
            &key,
            json!({"name": "cluster", "template_id": template["id"], "type": "regular",
                   "tenant": "brand", "audience": {"all": true}}),
        )
        .await;
    let campaign_id = campaign["id"].as_str().unwrap().to_owned();

    // Three workers, then the start.
    let mut generation = 0;
    let mut workers: Vec<Worker> = (0..3)
        .map(|i| start_worker(&secrets, format!("worker{i}-g0")))
        .collect();
    let started = Instant::now();
    api.post(
        &format!("/api/v2/campaigns/{campaign_id}/start"),
        &key,
        json!({}),
    )
    .await;

    let mut tally = Tally {
        seen: 0,
        counts: HashMap::new(),
    };
    let mut kill_reports: Vec<(usize, usize, f64)> = Vec::new();
    let mut recoveries = Vec::new();
    let kills = match fault {
        Fault::Kills(n) => n,
        Fault::PostgresRestart => 0,
    };
    let mut outage = None;
    if let (Fault::PostgresRestart, Database::Private(pg)) = (fault, &database) {
        // At about 40 %, the database goes away for a few seconds.
        while (tally.counts.len() as u64) < recipients * 2 / 5 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            tally.update(&smtp);
            assert!(started.elapsed() < Duration::from_secs(3_600), "stalled");
        }
        let before = tally.seen;
        let down = Instant::now();
        pg.restart(Duration::from_secs(3)).await;
        let seconds_down = down.elapsed().as_secs_f64();
        tally.update(&smtp);
        outage = Some((tally.seen - before, seconds_down));
    }
    let share = recipients as f64 / (kills as f64 + 1.0);
    for k in 0..kills {
        // A random point around the k-th share of the campaign.
        let at = (share * (k as f64 + 1.0) + share * (rng.random::<f64>() - 0.5) * 0.5) as usize;
        while tally.counts.len() < at {
            tokio::time::sleep(Duration::from_millis(20)).await;
            tally.update(&smtp);
            assert!(started.elapsed() < Duration::from_secs(3_600), "stalled");
        }
        let victim = rng.random_range(0..workers.len());
        workers[victim].child.start_kill().unwrap();
        let _ = workers[victim].child.wait().await;
        let killed = Instant::now();
        let dead = workers[victim].name.clone();
        let held: HashSet<String> = held_by(&db, &dead).await.into_iter().collect();
        generation += 1;
        workers[victim] = start_worker(&secrets, format!("worker{victim}-g{generation}"));
        // What the peer had accepted of them (a conversation cut by the kill is not).
        tokio::time::sleep(Duration::from_millis(300)).await;
        tally.update(&smtp);
        let accepted = held
            .iter()
            .filter(|id| tally.counts.contains_key(*id))
            .count();
        // Until none is the dead node's any more (watched beside the next kills).
        let db = db.clone();
        recoveries.push(tokio::spawn(async move {
            while !held_by(&db, &dead).await.is_empty() {
                tokio::time::sleep(Duration::from_millis(100)).await;
                assert!(
                    killed.elapsed() < Duration::from_secs(300),
                    "the dead node's messages never moved"
                );
            }
            killed.elapsed().as_secs_f64()
        }));
        kill_reports.push((held.len(), accepted, 0.0));
    }
    for (report, recovery) in kill_reports.iter_mut().zip(recoveries) {
        report.2 = recovery.await.unwrap();
    }
    // Until the campaign is sent.
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let status = campaign_status(&db, &campaign_id).await;
        if status.as_deref() == Some("sent") {
            break;
        }
        assert!(
            status.is_none() || status.as_deref() == Some("sending"),
            "{status:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(3_600),
            "the campaign never ended"
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    tally.update(&smtp);
    let stats = api
        .call(
            reqwest::Method::GET,
            &format!("/api/v2/campaigns/{campaign_id}/stats"),
            &key,
            Value::Null,
        )
        .await;
    for mut w in workers {
        let _ = w.child.start_kill();
        let _ = w.child.wait().await;
    }
    let _ = api_node.start_kill();
    let _ = api_node.wait().await;
    db.close().await;
    match database {
        Database::Shared(test_db) => test_db.drop_database().await.unwrap(),
        Database::Private(pg) => drop(pg),
    }

    let delivered = tally.counts.len() as u64;
    let total: u64 = tally.counts.values().map(|c| u64::from(*c)).sum();
    Report {
        recipients,
        delivered,
        lost: recipients.saturating_sub(delivered),
        duplicates: total - delivered,
        kills: kill_reports,
        outage,
        seconds,
        stats_sent: stats["totals"]["sent"].as_i64().unwrap_or(-1),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_workers_lose_nothing_and_their_messages_move_within_the_lease() {
    let probe = TestDatabase::create().await.unwrap();
    let postgres = probe.url.starts_with("postgres");
    probe.drop_database().await.unwrap();
    if !postgres {
        println!("cluster: skipped (several nodes share one database on PostgreSQL only)");
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().await;
    let recipients = env_number("EE_CLUSTER_RECIPIENTS", 10_000);
    let kills = env_number("EE_CLUSTER_KILLS", 3) as usize;
    let seed: u64 = env_number("EE_CLUSTER_SEED", rand::random());
    println!("cluster: {recipients} recipients, {kills} kills, seed {seed}");
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);

    let quiet = run(recipients, Fault::Kills(0), &mut rng).await;
    let killed = run(recipients, Fault::Kills(kills), &mut rng).await;
    println!(
        "cluster: without kills {:.1} s ({:.0} messages/s); with {kills} kills {:.1} s ({:.0} messages/s)",
        quiet.seconds,
        quiet.recipients as f64 / quiet.seconds,
        killed.seconds,
        killed.recipients as f64 / killed.seconds
    );
    println!(
        "cluster: delivered {} of {}, lost {}, duplicates {}",
        killed.delivered, killed.recipients, killed.lost, killed.duplicates
    );
    for (i, (held, accepted, moved)) in killed.kills.iter().enumerate() {
        println!(
            "cluster: kill {}: the dead node held {held}, {accepted} of them accepted by the peer; moving again after {moved:.1} s",
            i + 1
        );
    }
    for report in [&quiet, &killed] {
        assert_eq!(report.lost, 0, "{report:?}");
        assert_eq!(report.stats_sent, report.recipients as i64, "{report:?}");
    }
    assert_eq!(quiet.duplicates, 0, "{quiet:?}");
    let in_flight: usize = killed.kills.iter().map(|(_, accepted, _)| accepted).sum();
    assert!(
        killed.duplicates <= in_flight as u64,
        "duplicates beyond what the dead nodes had handed over: {killed:?}"
    );
    for (_, _, moved) in &killed.kills {
        assert!(
            *moved <= RECOVERY_BOUND_SECS,
            "a dead node's messages waited {moved:.1} s (lease {LEASE_SECS} s): {killed:?}"
        );
    }
}

/// PostgreSQL restarted mid-campaign (a private server, so that no other test sees it go):
/// the nodes reconnect and finish, nothing is lost, the statistics end right; what goes
/// twice is at most what the peer accepted while the database could not record it, and
/// what was unrecorded when it went.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_restart_mid_campaign_loses_nothing() {
    // With the PostgreSQL runs (CI's second pass), which have its binaries.
    if !std::env::var("EE_TEST_DATABASE_URL").is_ok_and(|u| u.starts_with("postgres")) {
        println!("cluster: skipped (PostgreSQL runs only)");
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().await;
    let recipients = env_number("EE_RESTART_RECIPIENTS", 5_000);
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(1);
    let report = run(recipients, Fault::PostgresRestart, &mut rng).await;
    let (during, down) = report.outage.unwrap();
    println!(
        "cluster: PostgreSQL away {down:.1} s; delivered {} of {}, lost {}, duplicates {}, {during} accepted while it was away; {:.1} s in all",
        report.delivered, report.recipients, report.lost, report.duplicates, report.seconds
    );
    assert_eq!(report.lost, 0, "{report:?}");
    assert_eq!(report.stats_sent, report.recipients as i64, "{report:?}");
    // Three workers, two batches each in hand, each with fewer than 50 unrecorded.
    assert!(
        report.duplicates <= (during + 3 * 2 * 50) as u64,
        "{report:?}"
    );
}
