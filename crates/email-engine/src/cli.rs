use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use ee_app::audit::Caller;
use ee_core::clock::Clock;
use ee_server::bootstrap::{AdminBootstrap, ensure_admin};
use ee_store::{Db, StoreError};
use tracing_subscriber::EnvFilter;

use crate::config::{Config, Overrides};

#[derive(Debug, Parser)]
#[command(
    name = "email-engine",
    version,
    about = "Self-hosted email infrastructure hub"
)]
pub struct Cli {
    /// A TOML configuration file.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The data directory (overrides EE_DATA_DIR).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The database URL (overrides DATABASE_URL).
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server: the API, the tracking and unsubscribe endpoints, the workers, the
    /// delivery engine and the scheduler (all, or one role).
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage API keys.
    #[command(subcommand, name = "api-key")]
    ApiKey(ApiKeyCommand),
    /// Import contacts from a CSV file (streamed; delimiter and encoding detected).
    Import {
        file: PathBuf,
        /// Tenant slug or id.
        #[arg(long)]
        tenant: String,
        /// The data source (slug or id) the contacts come from.
        #[arg(long)]
        source: Option<String>,
        /// Write the error report (line,reason) to this file.
        #[arg(long, value_name = "FILE")]
        errors: Option<PathBuf>,
    },
    /// DKIM keys.
    #[command(subcommand)]
    Dkim(DkimCommand),
    /// PowerMTA.
    #[command(subcommand)]
    Pmta(PmtaCommand),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// One-off DNS and blacklist checks (exit 1 when something is wrong).
    #[command(subcommand)]
    Check(CheckCommand),
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Import N generated contacts on SQLite and PostgreSQL against the sqlite3/psql floors.
    Import {
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        /// A PostgreSQL server to use (a database is created and dropped on it).
        #[arg(long, env = "EE_BENCH_POSTGRES_URL")]
        postgres_url: Option<String>,
        /// Where the generated file and the SQLite databases go (a temporary directory by default).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Send N personalised, tracked messages from the queue to smtp-sink, without DKIM,
    /// with RSA-2048 and with Ed25519, against the smtp-source floor (Debian package postfix).
    Send {
        #[arg(long, default_value_t = 100_000)]
        messages: u64,
        /// SMTP connections at once (ours and smtp-source's sessions).
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
    /// One measured send run (run by `bench send` in a child process).
    #[command(hide = true)]
    SendRun {
        #[arg(long)]
        database_url: String,
        #[arg(long)]
        messages: u64,
        #[arg(long)]
        port: u16,
        #[arg(long)]
        dkim: String,
        #[arg(long)]
        concurrency: usize,
    },
    /// One measured import (run by `bench import` in a child process).
    #[command(hide = true)]
    ImportRun {
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        database_url: String,
    },
}

#[derive(Debug, Subcommand)]
enum DkimCommand {
    /// Generate a DKIM key pair: the private key (PKCS#8 PEM) and the DNS record to publish.
    Generate {
        /// rsa (RSA-2048) or ed25519.
        #[arg(long, default_value = "rsa")]
        algorithm: String,
        #[arg(long, default_value = "default")]
        selector: String,
        /// The domain, to print the record's full name.
        #[arg(long)]
        domain: Option<String>,
        /// Write the private key to this file (mode 0600) instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum PmtaCommand {
    /// The PowerMTA configuration from the database: printed (relay password redacted),
    /// or written with the DKIM keys (mode 0600) into a directory.
    Config {
        /// Write `config` and `dkim/<domain>.<selector>.pem` here.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Deploy the configuration and DKIM keys to the PowerMTA host over SSH
    /// (EE_PMTA_SSH_*): back up, upload, validate, reload, check status, roll back on
    /// failure. Audited with the diff. Exits non-zero unless deployed.
    Deploy,
}

#[derive(Debug, Subcommand)]
enum CheckCommand {
    /// Check a domain's SPF, DKIM, DMARC, MX and PTR. A registered domain is checked
    /// against its keys and its tenant's IPs; otherwise name them with --ip and --dkim.
    Dns {
        domain: String,
        /// A sending IP, optionally with its host name: `192.0.2.10=mail.example.com`.
        #[arg(long = "ip", value_name = "IP[=HOST]")]
        ips: Vec<String>,
        /// A DKIM key that should be published: `selector=base64-public-key`.
        #[arg(long = "dkim", value_name = "SELECTOR=KEY")]
        dkim: Vec<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check an IP against the configured DNS blacklists.
    Blacklist {
        ip: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on (overrides EE_LISTEN).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// What this node runs: everything, only the API, or only workers.
    #[arg(long, value_enum, default_value_t = NodeRole::All)]
    role: NodeRole,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum NodeRole {
    All,
    Api,
    Worker,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create an account; prints its password when one is generated.
    Create {
        #[arg(long)]
        email: String,
        /// admin (all tenants) or user (one tenant).
        #[arg(long, default_value = "user")]
        role: String,
        /// Tenant slug or id (required for a user).
        #[arg(long)]
        tenant: Option<String>,
        /// Generated and printed when absent. Prefer the EE_NEW_USER_PASSWORD variable
        /// to keep it out of the shell history.
        #[arg(long, env = "EE_NEW_USER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum TenantCommand {
    /// Create a tenant; prints its id.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        slug: String,
        /// Settings as a JSON object.
        #[arg(long, default_value = "{}")]
        settings: String,
    },
}

#[derive(Debug, Subcommand)]
enum ApiKeyCommand {
    /// Create an API key for a tenant; prints the key once.
    Create {
        /// Tenant slug or id.
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
        /// RFC 3339 expiry, e.g. 2027-01-01T00:00:00Z.
        #[arg(long)]
        expires_at: Option<String>,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let listen = match &cli.command {
        Command::Serve(args) => args.listen.clone(),
        _ => None,
    };
    let overrides = Overrides {
        data_dir: cli.data_dir.clone(),
        database_url: cli.database_url.clone(),
        listen,
    };
    let config = Config::load(cli.config.as_deref(), &overrides)?;
    init_logging(&config, matches!(cli.command, Command::Serve(_)))?;
    match cli.command {
        Command::Serve(args) => serve(config, args.role).await,
        Command::Migrate => {
            let db = open_db(&config).await?;
            println!("migrations applied ({})", db.backend().as_str());
            Ok(())
        }
        Command::User(UserCommand::Create {
            email,
            role,
            tenant,
            password,
        }) => user_create(&config, &email, &role, tenant.as_deref(), password).await,
        Command::Tenant(TenantCommand::Create {
            name,
            slug,
            settings,
        }) => tenant_create(&config, &name, &slug, &settings).await,
        Command::ApiKey(ApiKeyCommand::Create {
            tenant,
            name,
            expires_at,
        }) => api_key_create(&config, &tenant, &name, expires_at.as_deref()).await,
        Command::Bench(BenchCommand::Import {
            rows,
            postgres_url,
            dir,
        }) => tokio::task::block_in_place(|| crate::bench::run(rows, postgres_url.as_deref(), dir)),
        Command::Bench(BenchCommand::Send {
            messages,
            concurrency,
        }) => tokio::task::block_in_place(|| crate::bench_send::run(messages, concurrency)),
        Command::Bench(BenchCommand::SendRun {
            database_url,
            messages,
            port,
            dkim,
            concurrency,
        }) => crate::bench_send::run_one(&database_url, messages, port, &dkim, concurrency).await,
        Command::Bench(BenchCommand::ImportRun { file, database_url }) => {
            crate::bench::run_one(&file, &database_url).await
        }
        Command::Dkim(DkimCommand::Generate {
            algorithm,
            selector,
            domain,
            out,
        }) => dkim_generate(&algorithm, &selector, domain.as_deref(), out.as_deref()),
        Command::Check(CheckCommand::Dns {
            domain,
            ips,
            dkim,
            json,
        }) => check_dns(&config, &domain, &ips, &dkim, json).await,
        Command::Check(CheckCommand::Blacklist { ip, json }) => {
            check_blacklist(&config, &ip, json).await
        }
        Command::Pmta(PmtaCommand::Config { out }) => pmta_config(&config, out.as_deref()).await,
        Command::Pmta(PmtaCommand::Deploy) => pmta_deploy(&config).await,
        Command::Import {
            file,
            tenant,
            source,
            errors,
        } => {
            import_csv(
                &config,
                &file,
                &tenant,
                source.as_deref(),
                errors.as_deref(),
            )
            .await
        }
    }
}

fn init_logging(config: &Config, serving: bool) -> anyhow::Result<()> {
    let default_level = if serving {
        config.log_level.as_str()
    } else {
        "warn"
    };
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(default_level))
        .context("invalid log_level")?;
    let json = match config.log_format.as_str() {
        "json" => true,
        "pretty" => false,
        _ => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    } else {
        builder.try_init()
    };
    result.map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))
}

async fn open_db(config: &Config) -> anyhow::Result<Db> {
    crate::secrets::private_dir(&config.data_dir)?;
    if let Some(path) = sqlite_file(&config.database_url()) {
        create_private_file(std::path::Path::new(path))?;
    }
    let db = Db::connect(&config.database_url(), config.db_max_connections)
        .await
        .context("cannot open the database")?;
    db.migrate().await.context("cannot apply migrations")?;
    Ok(db)
}

/// The file of a `sqlite:` URL (none for an in-memory database).
fn sqlite_file(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then_some(path)
}

/// Creates an empty file readable by its owner only, unless it exists: SQLite then
/// keeps that mode, and gives it to the database's -wal and -shm files too.
fn create_private_file(path: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}

/// Writes a file readable by its owner only.
fn write_private(path: &std::path::Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    use std::os::unix::fs::PermissionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    // An existing file keeps its mode on open: set it.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(contents)?;
    Ok(())
}

/// Services for a one-off PowerMTA command.
async fn pmta_services(config: &Config) -> anyhow::Result<ee_app::Services> {
    let keys = crate::secrets::load_or_create(config)?;
    let sealer = ee_core::secrets::Sealer::new(&keys.master_key)
        .map_err(|e| anyhow::anyhow!("master key: {e}"))?;
    let db = open_db(config).await?;
    Ok(ee_app::Services {
        db: db.clone(),
        clock: Clock::System,
        alerts: Default::default(),
        infra: config.infra_settings(),
        resolver: ee_dns::Resolver::new(&config.resolver_settings()?)
            .map_err(|e| anyhow::anyhow!("DNS resolver: {e}"))?,
        dnsbl_zones: Vec::new(),
        probe: Default::default(),
        delivery: config.delivery_settings(tracking_key(&keys.master_key), sealer)?,
        pmta: config.pmta_settings(&hostname()),
        outbound: std::sync::Arc::new(config.outbound_policy()?),
    })
}

async fn pmta_deploy(config: &Config) -> anyhow::Result<()> {
    let services = pmta_services(config).await?;
    let report = ee_app::powermta::deploy(&services, &services.pmta)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let entry = ee_store::audit::NewAuditEntry {
        actor_type: "system".into(),
        actor_id: None,
        actor_label: Some("email-engine pmta deploy".into()),
        tenant_id: None,
        action: "powermta.deploy".into(),
        resource_type: "powermta".into(),
        resource_id: Some(report.target.clone()),
        changes: serde_json::json!({"before": null, "after": report}).to_string(),
        ip_address: None,
        user_agent: None,
        request_id: None,
    };
    let mut conn = services.db.pool().acquire().await?;
    ee_store::audit::insert(&mut conn, entry, services.clock.now_ms()).await?;
    drop(conn);
    services.db.close().await;
    for step in &report.steps {
        let mark = if step.ok { "ok  " } else { "FAIL" };
        println!(
            "{mark} {}{}",
            step.name,
            if step.detail.is_empty() {
                String::new()
            } else {
                format!(": {}", step.detail)
            }
        );
    }
    if !report.diff.is_empty() {
        println!("{}", report.diff);
    }
    match report.outcome {
        ee_connectors::pmta_deploy::Outcome::Deployed => {
            println!("deployed to {}", report.target);
            Ok(())
        }
        other => anyhow::bail!(
            "not deployed ({}): {}",
            other.as_str(),
            report.reason.unwrap_or_default()
        ),
    }
}

async fn pmta_config(config: &Config, out: Option<&std::path::Path>) -> anyhow::Result<()> {
    let services = pmta_services(config).await?;
    let db = services.db.clone();
    let generated = ee_app::powermta::generate(&services, &services.pmta, out.is_some())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    db.close().await;
    match out {
        None => print!("{}", generated.config),
        Some(dir) => {
            let dkim = dir.join("dkim");
            std::fs::create_dir_all(&dkim)
                .with_context(|| format!("cannot create {}", dkim.display()))?;
            // The file holds the relay password: owner only, like the keys.
            write_private(&dir.join("config"), generated.config.as_bytes())?;
            for key in &generated.keys {
                write_private(&dkim.join(&key.file_name), key.pem.as_bytes())?;
            }
            println!(
                "wrote {} and {} DKIM key(s) in {}",
                dir.join("config").display(),
                generated.keys.len(),
                dkim.display()
            );
        }
    }
    Ok(())
}

/// The key of tracking and unsubscribe tokens: derived from the master key, so that
/// every node of a cluster signs and checks the same tokens.
fn tracking_key(master_key: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    hasher.update(b"email-engine tracking tokens v1\0");
    hasher.update(master_key);
    hasher.finalize().to_vec()
}

async fn serve(config: Config, role: NodeRole) -> anyhow::Result<()> {
    let keys = crate::secrets::load_or_create(&config)?;
    // Checked at start, so that a wrong master key fails now rather than in a later job.
    let sealer = ee_core::secrets::Sealer::new(&keys.master_key)
        .map_err(|e| anyhow::anyhow!("master key: {e}"))?;
    let db = open_db(&config).await?;
    let clock = Clock::System;
    match ensure_admin(
        &db,
        &config.admin_email,
        config.admin_password.as_deref(),
        clock.now_ms(),
    )
    .await?
    {
        AdminBootstrap::Generated { email, password } => {
            // Printed once, to the terminal, never to the logs.
            println!(
                "First run: created the admin account\n  email:    {email}\n  password: {password}\nKeep this password: it is not shown again."
            );
        }
        AdminBootstrap::Created { email } => {
            tracing::info!(%email, "created the first admin account")
        }
        AdminBootstrap::Existing => {}
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let services = ee_app::Services {
        db: db.clone(),
        clock: clock.clone(),
        alerts: config.alert_channels(),
        infra: config.infra_settings(),
        resolver: ee_dns::Resolver::new(&config.resolver_settings()?)
            .map_err(|e| anyhow::anyhow!("DNS resolver: {e}"))?,
        dnsbl_zones: config.dnsbl_zones(),
        probe: ee_app::validation::ProbeSettings {
            port: config.smtp_probe_port,
            mail_from: config.smtp_probe_from.clone(),
            helo: hostname(),
            ..Default::default()
        },
        delivery: config.delivery_settings(tracking_key(&keys.master_key), sealer.clone())?,
        pmta: config.pmta_settings(&hostname()),
        outbound: std::sync::Arc::new(config.outbound_policy()?),
    };
    if matches!(role, NodeRole::All | NodeRole::Worker) {
        let engine = ee_jobs::delivery::Engine::new(services.clone());
        let delivery_stop = stop_rx.clone();
        tasks.spawn(async move {
            engine.run(delivery_stop).await;
            Ok(())
        });
        let registry = ee_jobs::standard_registry(services.clone());
        let mut worker_config =
            ee_jobs::WorkerConfig::new(format!("{}-{}", hostname(), std::process::id()));
        worker_config.concurrency = config.worker_concurrency;
        let worker = ee_jobs::Worker::new(db.clone(), clock.clone(), worker_config, registry);
        let worker_stop = stop_rx.clone();
        tasks.spawn(async move {
            worker.run(worker_stop).await;
            Ok(())
        });
        // Every worker node runs the scheduler: unique slot keys make one run per slot.
        let (scheduler_db, scheduler_clock) = (db.clone(), clock.clone());
        tasks.spawn(async move {
            ee_jobs::scheduler::run(scheduler_db, scheduler_clock, stop_rx).await;
            Ok(())
        });
    }
    if matches!(role, NodeRole::All | NodeRole::Api) {
        let mut settings = ee_server::Settings::new(keys.jwt_secret, sealer);
        settings.public_url = config.public_url();
        settings.cors_origins = config.cors_origins();
        settings.rate_limit_per_minute = config.rate_limit_per_minute;
        settings.ip_rate_limit_per_minute = config.ip_rate_limit_per_minute;
        settings.access_token_ttl_secs = config.access_token_ttl_secs;
        settings.refresh_token_ttl_secs = config.refresh_token_ttl_secs;
        settings.api_key_grace_secs = config.api_key_grace_secs;
        settings.max_body_bytes = config.max_body_bytes;
        settings.metrics_token = Some(keys.metrics_token);
        settings.uploads_dir = config
            .uploads_dir
            .clone()
            .unwrap_or_else(|| config.data_dir.join("uploads"));
        let state = ee_server::AppState::new(settings, services.clone());
        let listener = tokio::net::TcpListener::bind(&config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        tracing::info!(address = %listener.local_addr()?, backend = db.backend().as_str(), "listening");
        let mut stopped = stop_tx.subscribe();
        tasks.spawn(async move {
            ee_server::serve(listener, state, async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            })
            .await
            .context("the HTTP server failed")
        });
    }
    tokio::select! {
        () = shutdown_signal() => tracing::info!("shutting down"),
        Some(result) = tasks.join_next() => {
            result.context("a server task panicked")??;
        }
    }
    let _ = stop_tx.send(true);
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(30), drain)
        .await
        .is_err()
    {
        tracing::warn!("tasks still running after 30 s; exiting anyway");
    }
    db.close().await;
    Ok(())
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".into())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// A use-case's error as one line naming the command-line flag (`tenant_id` is
/// `--tenant`, `expires_at` is `--expires-at`).
fn app_error(e: ee_app::AppError) -> anyhow::Error {
    match e {
        ee_app::AppError::Invalid(errors) => {
            let flags: Vec<String> = errors
                .0
                .iter()
                .map(|e| {
                    let flag = match e.field.as_str() {
                        "tenant_id" => "tenant".to_owned(),
                        other => other.replace('_', "-"),
                    };
                    format!("--{flag}: {}", e.message)
                })
                .collect();
            anyhow::anyhow!("invalid input: {}", flags.join("; "))
        }
        ee_app::AppError::NotFound(what) => anyhow::anyhow!("no such {what}"),
        ee_app::AppError::Store(StoreError::Conflict(what)) => {
            anyhow::anyhow!("{what} already exists")
        }
        other => other.into(),
    }
}

async fn tenant_create(
    config: &Config,
    name: &str,
    slug: &str,
    settings: &str,
) -> anyhow::Result<()> {
    let settings = match serde_json::from_str::<serde_json::Value>(settings) {
        Ok(v) if v.is_object() => v,
        _ => bail!("invalid input: --settings: must be a JSON object"),
    };
    let db = open_db(config).await?;
    let input = ee_app::tenants::NewTenantInput {
        name: name.to_owned(),
        slug: slug.to_owned(),
        settings: Some(settings),
    };
    let tenant = ee_app::tenants::create(&db, &Caller::cli(), input, Clock::System.now_ms())
        .await
        .map_err(app_error)?;
    println!("{}", tenant.id);
    Ok(())
}

async fn user_create(
    config: &Config,
    email: &str,
    role: &str,
    tenant: Option<&str>,
    password: Option<String>,
) -> anyhow::Result<()> {
    let generated = password.is_none();
    let password = password.unwrap_or_else(ee_core::auth::generate_password);
    let db = open_db(config).await?;
    let input = ee_app::users::NewUserInput {
        email: email.to_owned(),
        password: password.clone(),
        role: role.to_owned(),
        tenant: tenant.map(str::to_owned),
        username: None,
    };
    let user = ee_app::users::create(&db, &Caller::cli(), input, Clock::System.now_ms())
        .await
        .map_err(app_error)?;
    println!("{}", user.id);
    if generated {
        println!("password: {password}");
    }
    Ok(())
}

async fn api_key_create(
    config: &Config,
    tenant: &str,
    name: &str,
    expires_at: Option<&str>,
) -> anyhow::Result<()> {
    let expires_at = match expires_at {
        None => None,
        Some(text) => Some(ee_core::timefmt::parse_rfc3339(text).ok_or_else(|| {
            anyhow::anyhow!(
                "invalid input: --expires-at: must be an RFC 3339 date-time, e.g. 2027-01-01T00:00:00Z"
            )
        })?),
    };
    let db = open_db(config).await?;
    let input = ee_app::api_keys::NewKeyInput {
        tenant: tenant.to_owned(),
        name: name.to_owned(),
        expires_at,
        created_by: None,
    };
    let (stored, key) =
        ee_app::api_keys::create(&db, &Caller::cli(), input, Clock::System.now_ms())
            .await
            .map_err(app_error)?;
    println!(
        "id:  {}\nkey: {key}\nThe key is not stored and is not shown again.",
        stored.id
    );
    Ok(())
}

fn dkim_generate(
    algorithm: &str,
    selector: &str,
    domain: Option<&str>,
    out: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let algorithm =
        ee_mail::dkim::Algorithm::parse(algorithm).context("--algorithm must be rsa or ed25519")?;
    if selector.is_empty()
        || !selector
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        bail!("--selector must be a DNS label (letters, digits, hyphens)");
    }
    let key = ee_mail::dkim::generate(algorithm).map_err(|e| anyhow::anyhow!("{e}"))?;
    let name = match domain {
        Some(d) => format!("{selector}._domainkey.{}", d.trim_end_matches('.')),
        None => format!("{selector}._domainkey"),
    };
    match out {
        Some(path) => {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options
                .open(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            std::io::Write::write_all(&mut file, key.private_pem.as_bytes())?;
            println!("private key written to {}", path.display());
        }
        None => print!("{}", key.private_pem),
    }
    // A TXT string holds at most 255 bytes (RFC 1035): an RSA record is split into
    // several, which resolvers join (RFC 7208 §3.3, RFC 6376 §3.6.2.2).
    let strings: Vec<String> =
        ee_mail::dkim::txt_strings(&ee_mail::dkim::dns_record(algorithm, &key.public_b64))
            .into_iter()
            .map(|s| format!("\"{s}\""))
            .collect();
    println!("{name} IN TXT {}", strings.join(" "));
    Ok(())
}

async fn check_dns(
    config: &Config,
    domain: &str,
    ips: &[String],
    dkim: &[String],
    json: bool,
) -> anyhow::Result<()> {
    let domain = domain.trim().trim_end_matches('.').to_lowercase();
    let mut expectation = ee_dns::checks::Expectation {
        domain: domain.clone(),
        dkim: Vec::new(),
        ips: Vec::new(),
    };
    for entry in ips {
        let (ip, host) = match entry.split_once('=') {
            Some((ip, host)) => (ip, Some(host.trim_end_matches('.').to_lowercase())),
            None => (entry.as_str(), None),
        };
        let ip = ip
            .parse()
            .with_context(|| format!("--ip {entry:?}: not an IP address"))?;
        expectation.ips.push((ip, host));
    }
    for entry in dkim {
        let (selector, key) = entry
            .split_once('=')
            .with_context(|| format!("--dkim {entry:?}: expected SELECTOR=KEY"))?;
        expectation.dkim.push((selector.to_owned(), key.to_owned()));
    }
    if expectation.ips.is_empty() && expectation.dkim.is_empty() {
        // A registered domain: its keys and its tenant's IPs.
        let db = open_db(config).await?;
        let mut conn = db.pool().acquire().await.map_err(StoreError::from)?;
        let registered = ee_store::domains::list(&mut conn, None)
            .await?
            .into_iter()
            .find(|d| d.domain_name == domain);
        let Some(registered) = registered else {
            bail!("{domain} is not registered here; name what to expect with --ip and --dkim");
        };
        for key in ee_store::domains::published_keys(&mut conn, &registered.id).await? {
            expectation.dkim.push((key.selector, key.public_key));
        }
        let filter = ee_store::ips::IpFilter {
            scope: Some(&registered.tenant_id),
            ..Default::default()
        };
        for ip in ee_store::ips::list(&mut conn, &filter).await? {
            if let Ok(addr) = ip.ip_address.parse() {
                expectation.ips.push((addr, ip.hostname));
            }
        }
    }
    let settings = config.resolver_settings()?;
    let resolver =
        ee_dns::Resolver::new(&settings).map_err(|e| anyhow::anyhow!("DNS resolver: {e}"))?;
    // One question first: when no name server answers, say so at once instead of every
    // check timing out in turn and ending as "incomplete".
    if let Err(e @ ee_dns::DnsError::Failed { .. }) = resolver.txt(&domain).await {
        bail!(
            "DNS unreachable: no answer within {} ms per query ({e}); check EE_DNS_SERVERS",
            settings.timeout.as_millis()
        );
    }
    let report = ee_dns::checks::check_domain(&resolver, &expectation).await;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let mark = |ok: bool| if ok { "ok  " } else { "FAIL" };
        for s in &report.spf {
            println!("{} SPF   {} -> {}", mark(s.ok), s.ip, s.result.as_str());
        }
        for d in &report.dkim {
            println!(
                "{} DKIM  {} {}",
                mark(d.ok),
                d.selector,
                d.error.clone().unwrap_or_default()
            );
        }
        println!(
            "{} DMARC {} {}",
            mark(report.dmarc.ok),
            report.dmarc.policy.clone().unwrap_or_default(),
            report.dmarc.error.clone().unwrap_or_default()
        );
        println!(
            "{} MX    {} {}",
            mark(report.mx.ok),
            report.mx.hosts.join(", "),
            report.mx.error.clone().unwrap_or_default()
        );
        for p in &report.ptr {
            println!(
                "{} PTR   {} -> {} {}",
                mark(p.ok),
                p.ip,
                p.names.join(", "),
                p.error.clone().unwrap_or_default()
            );
        }
    }
    if report.ok {
        Ok(())
    } else {
        bail!("{domain}: DNS is incomplete")
    }
}

async fn check_blacklist(config: &Config, ip: &str, json: bool) -> anyhow::Result<()> {
    let address: std::net::IpAddr = ip
        .trim()
        .parse()
        .with_context(|| format!("{ip:?} is not an IP address"))?;
    let resolver = ee_dns::Resolver::new(&config.resolver_settings()?)
        .map_err(|e| anyhow::anyhow!("DNS resolver: {e}"))?;
    let listings = ee_dns::dnsbl::check_all(&resolver, address, &config.dnsbl_zones()).await;
    if json {
        println!("{}", serde_json::to_string_pretty(&listings)?);
    } else {
        for l in &listings {
            let status = match (&l.error, l.listed) {
                (Some(e), _) => format!("unknown ({e})"),
                (None, true) => format!(
                    "LISTED {} {}",
                    l.codes.join(","),
                    l.reason.clone().unwrap_or_default()
                ),
                (None, false) => "clean".to_owned(),
            };
            println!("{:<28} {status}", l.zone);
        }
    }
    let listed: Vec<&str> = listings
        .iter()
        .filter(|l| l.listed)
        .map(|l| l.zone.as_str())
        .collect();
    let unknown: Vec<&str> = listings
        .iter()
        .filter(|l| l.error.is_some())
        .map(|l| l.zone.as_str())
        .collect();
    if !listed.is_empty() {
        bail!("{address} is listed by {}", listed.join(", "))
    }
    // Unknown is not clean: a list that could not be asked, or failed its self-test,
    // says nothing about the address.
    if !unknown.is_empty() {
        bail!(
            "{address}: {} of {} lists could not be checked ({}); DNS may be unreachable",
            unknown.len(),
            listings.len(),
            unknown.join(", ")
        )
    }
    Ok(())
}

async fn import_csv(
    config: &Config,
    file: &std::path::Path,
    tenant: &str,
    source: Option<&str>,
    errors_out: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let size = std::fs::metadata(file)
        .with_context(|| format!("cannot read {}", file.display()))?
        .len();
    let db = open_db(config).await?;
    let mut conn = db.pool().acquire().await.map_err(StoreError::from)?;
    let tenant = ee_app::tenants::find(&mut conn, tenant)
        .await
        .map_err(app_error)?;
    let source = match source {
        Some(key) => Some(
            ee_store::sources::find(&mut conn, key, Some(&tenant.id))
                .await?
                .into_iter()
                .next()
                .with_context(|| format!("tenant {} has no data source {key:?}", tenant.slug))?,
        ),
        None => None,
    };
    let clock = Clock::System;
    let filename = file.file_name().map(|n| n.to_string_lossy().into_owned());
    let mut import = ee_store::imports::insert(
        &mut conn,
        &tenant.id,
        source.as_ref().map(|s| s.id.as_str()),
        filename.as_deref(),
        None,
        clock.now_ms(),
    )
    .await?;
    drop(conn);
    let bar = indicatif::ProgressBar::new(size);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg} ({eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let outcome = ee_app::csv_import::run(
        &db,
        &mut import,
        source.as_ref(),
        file.to_path_buf(),
        || clock.now_ms(),
        |counts, lines, bytes| {
            bar.set_position(bytes);
            bar.set_message(format!(
                "{lines} lines: {} created, {} updated, {} duplicates, {} rejected",
                counts.created, counts.updated, counts.duplicate, counts.rejected
            ));
        },
    )
    .await;
    bar.finish_and_clear();
    import.finished_at = Some(clock.now_ms());
    let mut conn = db.pool().acquire().await.map_err(StoreError::from)?;
    let counts = match outcome {
        Ok(c) => {
            import.status = "done".into();
            ee_store::imports::update(&mut conn, &import).await?;
            c
        }
        Err(e) => {
            import.status = "failed".into();
            import.error = Some(e.clone());
            ee_store::imports::update(&mut conn, &import).await?;
            bail!("import failed: {e}");
        }
    };
    let errors = ee_store::imports::errors(&mut conn, &import.id).await?;
    if let Some(path) = errors_out {
        let mut out = std::fs::File::create(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        use std::io::Write as _;
        writeln!(out, "line,reason")?;
        for (line, reason) in &errors {
            writeln!(out, "{line},\"{}\"", reason.replace('"', "\"\""))?;
        }
    }
    println!(
        "import {}: {} lines, {} created, {} updated, {} duplicates, {} rejected ({}, delimiter {:?})",
        import.id,
        import.total,
        counts.created,
        counts.updated,
        counts.duplicate,
        counts.rejected,
        import.encoding.clone().unwrap_or_default(),
        import.delimiter.clone().unwrap_or_default()
    );
    Ok(())
}
