//! `email-engine bench send`: N personalised, tracked messages from the queue to Postfix's
//! `smtp-sink` on loopback, without DKIM, with RSA-2048 and with Ed25519, each run in a
//! child process (its peak RSS is its own); then the floor: `smtp-source` sending as many
//! messages of the same size over as many connections to the same sink.

use ee_store::Scope;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ee_core::clock::Clock;
use ee_store::Db;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub struct SendReport {
    pub dkim: String,
    pub messages: u64,
    pub sent: u64,
    pub queue_seconds: f64,
    pub seconds: f64,
    pub messages_per_second: f64,
    pub average_bytes: u64,
    pub peak_rss_mb: f64,
}

const HTML: &str = "<html><body><p>Bonjour [FNAME],</p>\
<p>Votre espace [COMPANY] est prêt : <a href=\"https://brand.test/account?ref=welcome\">ouvrir mon compte</a>.</p>\
<p>Des questions ? <a href=\"https://brand.test/help\">Le centre d'aide</a> répond en neuf langues.</p>\
<p>À bientôt,<br>L'équipe Brand</p>\
<p style=\"font-size:small\"><a href=\"[UNSUBSCRIBE_URL]\">Se désinscrire</a></p></body></html>";

/// A sink on a free loopback port: `smtp-sink` (Debian package postfix).
pub(crate) struct Sink {
    child: Child,
    pub(crate) port: u16,
}

impl Sink {
    pub(crate) fn start() -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut cmd = Command::new("smtp-sink");
        // As root, smtp-sink wants an unprivileged user to run as.
        if std::env::var("USER").as_deref() == Ok("root") || is_root() {
            cmd.args(["-u", "nobody"]);
        }
        cmd.args(["-m", "1000", &format!("127.0.0.1:{port}"), "1024"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd
            .spawn()
            .context("cannot run smtp-sink (Debian package postfix)")?;
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(Self { child, port });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("smtp-sink did not start listening")
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// What a send run starts from: a fresh database with a tenant relaying to the sink, its
/// DKIM key (none, rsa or ed25519), the French template `welcome`, the recipients' MX
/// answer cached, and the services of a node sending with `concurrency` connections.
pub(crate) struct Setup {
    pub db: Db,
    pub services: ee_app::Services,
    pub tenant: ee_store::tenants::Tenant,
    pub template: ee_store::templates::Template,
}

pub(crate) async fn setup(
    database_url: &str,
    port: u16,
    dkim: &str,
    concurrency: usize,
) -> anyhow::Result<Setup> {
    let db = Db::connect(database_url, 8).await?;
    db.migrate().await?;
    let clock = Clock::System;
    let now = clock.now_ms();
    let mut master = [0u8; 32];
    rand::fill(&mut master[..]);
    let sealer = ee_core::secrets::Sealer::new(&master).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut conn = db.pool().acquire().await?;
    let tenant = ee_store::tenants::insert(
        &mut conn,
        ee_store::tenants::NewTenant {
            name: "Bench",
            slug: "bench",
            // The run without DKIM sends from a domain without a key.
            settings: r#"{"delivery":{"mode":"relay","relay":"sink","allow_unsigned_senders":true}}"#,
        },
        now,
    )
    .await?;
    ee_store::relays::insert(
        &mut conn,
        &tenant.id,
        &ee_store::relays::NewRelay {
            name: "sink",
            host: "127.0.0.1",
            port,
            username: None,
            password_sealed: None,
            tls: "none",
            powermta: true,
            weight: 1,
            max_per_hour: None,
            max_connections: None,
        },
        now,
    )
    .await?;
    if let Some(algorithm) = ee_mail::dkim::Algorithm::parse(dkim) {
        let key = ee_mail::dkim::generate(algorithm).map_err(|e| anyhow::anyhow!("{e}"))?;
        let domain =
            ee_store::domains::insert(&mut conn, &tenant.id, "brand.test", "none", now).await?;
        ee_store::domains::add_active_key(
            &mut conn,
            &domain.id,
            "s1",
            algorithm.as_str(),
            &sealer.seal(ee_core::dkim::SEAL_PURPOSE, key.private_pem.as_bytes()),
            &key.public_b64,
            now,
        )
        .await?;
    }
    let template = ee_store::templates::insert(
        &mut conn,
        &tenant.id,
        &ee_store::templates::Content {
            name: "welcome",
            language: "fr",
            category: None,
            subject: "Bienvenue chez [COMPANY], [FNAME]",
            html: HTML,
            text: None,
            variables: "{}",
            from_name: Some("Brand"),
            from_email: Some("hello@brand.test"),
            reply_to: None,
            design: None,
        },
        None,
        now,
    )
    .await?;
    // The recipients' domain is a known one: its MX answer is in the cache, as it is for
    // the big providers on a running system.
    ee_store::sources::cache_mx(
        &mut conn,
        "example.test",
        "found",
        r#"["mx.example.test"]"#,
        now + 86_400_000,
    )
    .await?;
    drop(conn);
    let resolver = ee_dns::Resolver::new(&ee_dns::ResolverSettings {
        servers: vec!["127.0.0.1:9".parse()?],
        timeout: Duration::from_millis(200),
        attempts: 1,
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let services = ee_app::Services {
        delivery: ee_app::delivery::DeliverySettings {
            public_url: "https://ee.brand.test".into(),
            sealer: Some(sealer),
            concurrency,
            batch: 500,
            timeout: Duration::from_secs(30),
            ..Default::default()
        },
        outbound: std::sync::Arc::new(
            ee_core::outbound::OutboundPolicy::parse("127.0.0.0/8").map_err(anyhow::Error::msg)?,
        ),
        ..ee_app::Services::new(db.clone(), clock.clone(), resolver)
    };
    Ok(Setup {
        db,
        services,
        tenant,
        template,
    })
}

/// The child: queue N messages in a fresh database, then deliver them to the sink and
/// report on stdout.
pub async fn run_one(
    database_url: &str,
    messages: u64,
    port: u16,
    dkim: &str,
    concurrency: usize,
) -> anyhow::Result<()> {
    let Setup {
        db,
        services,
        tenant,
        ..
    } = setup(database_url, port, dkim, concurrency).await?;
    let queue_started = Instant::now();
    for i in 0..messages {
        ee_app::queue::messages::queue(
            &services,
            ee_app::queue::messages::SendRequest {
                tenant_id: tenant.id.clone(),
                kind: ee_core::delivery::MessageKind::Transactional,
                to_email: format!("user{i}@example.test"),
                template: Some("welcome".into()),
                variables: [
                    ("FNAME".to_owned(), format!("Prénom{i}")),
                    ("COMPANY".to_owned(), format!("Société {}", i % 977)),
                ]
                .into_iter()
                .collect(),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("queueing: {e}"))?;
    }
    let queue_seconds = queue_started.elapsed().as_secs_f64();
    let engine = ee_jobs::delivery::Engine::new(services.clone());
    let started = Instant::now();
    engine
        .run_until_idle()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let seconds = started.elapsed().as_secs_f64();
    engine.close_idle().await;
    let mut conn = db.pool().acquire().await?;
    let counts = ee_store::messages::counts_by_state(&mut conn, Scope::All).await?;
    let sent = counts
        .iter()
        .find(|(s, _)| s == "sent")
        .map_or(0, |(_, n)| *n as u64);
    drop(conn);
    let report = SendReport {
        dkim: dkim.into(),
        messages,
        sent,
        queue_seconds,
        seconds,
        messages_per_second: sent as f64 / seconds,
        average_bytes: average_size(&services, &tenant.id).await?,
        peak_rss_mb: crate::bench::peak_rss_mb(),
    };
    db.close().await;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// The size of one message as it goes out (built and signed like the others).
pub(crate) async fn average_size(
    services: &ee_app::Services,
    tenant_id: &str,
) -> anyhow::Result<u64> {
    let mut conn = services.db.pool().acquire().await?;
    let any: (String,) = sqlx::query_as("SELECT id FROM messages WHERE tenant_id = $1 LIMIT 1")
        .bind(tenant_id)
        .fetch_one(&mut *conn)
        .await?;
    let message = ee_store::messages::get(&mut conn, &any.0, Scope::All).await?;
    drop(conn);
    let built = ee_jobs::delivery::Engine::new(services.clone())
        .render_for_size(&message)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(built as u64)
}

fn child(
    dir: &Path,
    messages: u64,
    port: u16,
    dkim: &str,
    concurrency: usize,
) -> anyhow::Result<SendReport> {
    let db = dir.join(format!("send-{dkim}.db"));
    let _ = std::fs::remove_file(&db);
    run_child(
        "send-run",
        &db,
        &[
            ("--messages", messages.to_string()),
            ("--port", port.to_string()),
            ("--dkim", dkim.to_owned()),
            ("--concurrency", concurrency.to_string()),
        ],
    )
}

/// Runs `email-engine bench <run> --database-url sqlite://<db> <args>` in a child process
/// (its peak RSS is its own) and reads the report it prints last, as JSON.
pub(crate) fn run_child<T: serde::de::DeserializeOwned>(
    run: &str,
    db: &Path,
    args: &[(&str, String)],
) -> anyhow::Result<T> {
    let mut command = Command::new(std::env::current_exe()?);
    command
        .args(["bench", run, "--database-url"])
        .arg(format!("sqlite://{}", db.display()));
    for (name, value) in args {
        command.arg(name).arg(value);
    }
    let out = command.env("RUST_LOG", "error").output()?;
    if !out.status.success() {
        bail!(
            "the {run} child failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap_or_default())
        .with_context(|| format!("the {run} child printed no report"))
}

/// The floor: smtp-source, as many messages of the same size, as many sessions, each
/// session reusing its connection (`-d`).
pub(crate) fn floor(messages: u64, bytes: u64, sessions: usize, port: u16) -> anyhow::Result<f64> {
    let started = Instant::now();
    let out = Command::new("smtp-source")
        .args(["-d", "-s", &sessions.to_string()])
        .args(["-m", &messages.to_string()])
        .args(["-l", &bytes.to_string()])
        .args(["-f", "hello@brand.test", "-t", "user@example.test"])
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .context("cannot run smtp-source (Debian package postfix)")?;
    if !out.status.success() {
        bail!(
            "smtp-source failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(messages as f64 / started.elapsed().as_secs_f64())
}

/// The whole benchmark; prints a table.
pub fn run(messages: u64, concurrency: usize) -> anyhow::Result<()> {
    let temp = tempfile::tempdir()?;
    println!(
        "{messages} messages (personalised, open and click tracking), {concurrency} connections, SQLite"
    );
    println!(
        "{:<10} {:>10} {:>12} {:>14} {:>8} {:>12} {:>10}",
        "DKIM", "ours msg/s", "floor msg/s", "ours / floor", "bytes", "peak RSS MB", "queue s"
    );
    let mut floor_rate = None;
    for dkim in ["none", "rsa", "ed25519"] {
        eprintln!("{dkim}: queueing and sending…");
        let sink = Sink::start()?;
        let ours = child(temp.path(), messages, sink.port, dkim, concurrency)?;
        drop(sink);
        if ours.sent != messages {
            bail!("{dkim}: {} of {messages} sent", ours.sent);
        }
        let floor = match floor_rate {
            Some(f) => f,
            None => {
                eprintln!("floor: smtp-source…");
                let sink = Sink::start()?;
                let f = floor(messages, ours.average_bytes, concurrency, sink.port)?;
                floor_rate = Some(f);
                f
            }
        };
        println!(
            "{:<10} {:>10.0} {:>12.0} {:>14.2} {:>8} {:>12.1} {:>10.1}",
            dkim,
            ours.messages_per_second,
            floor,
            ours.messages_per_second / floor,
            ours.average_bytes,
            ours.peak_rss_mb,
            ours.queue_seconds
        );
    }
    Ok(())
}
