//! The command line: arguments (this file) and one module per command group.

mod admin;
mod backup;
mod bounce;
mod check;
mod dkim;
mod files;
mod import;
mod pmta;
mod serve;
mod services;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
    /// Bounces and abuse reports.
    #[command(subcommand)]
    Bounce(BounceCommand),
    /// Back up the database (a consistent copy, online) with the keys that unseal its
    /// secrets, as one archive encrypted with age.
    Backup {
        /// Where to write the encrypted archive.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// A file holding the passphrase (else EE_BACKUP_PASSPHRASE).
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
        /// Encrypt to this age public key (`age1…`) instead of a passphrase; repeatable.
        #[arg(long, value_name = "AGE_PUBLIC_KEY")]
        recipient: Vec<String>,
    },
    /// Restore a backup into the configured data directory and database (a live one is
    /// refused unless --force).
    Restore {
        file: PathBuf,
        /// A file holding the passphrase (else EE_BACKUP_PASSPHRASE).
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
        /// An age identity file (`AGE-SECRET-KEY-1…`) for a backup sealed to recipients.
        #[arg(long, value_name = "FILE")]
        identity: Vec<PathBuf>,
        /// Replace an existing data directory or database.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
enum BounceCommand {
    /// Read DSNs, ARF reports and free-text bounces as the feedback listener does and print
    /// one JSON line per recipient: {file, kind, class, category, recipient, code, status,
    /// diagnostic} (exit 1 when a file holds none).
    Classify {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
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
    /// Fan a campaign out to a segment of N contacts on SQLite (and PostgreSQL when given),
    /// against the floor: the same rows copied by one bare INSERT … SELECT.
    /// Then, unless `--send 0`, the send half: a personalised, tracked campaign to `--send`
    /// contacts delivered to smtp-sink, without DKIM and with RSA-2048, against the
    /// smtp-source floor and the RSA signing ceiling.
    Campaign {
        #[arg(long, default_value_t = 1_000_000)]
        recipients: i64,
        /// A PostgreSQL server to use (a database is created and dropped on it).
        #[arg(long, env = "EE_BENCH_POSTGRES_URL")]
        postgres_url: Option<String>,
        /// Recipients of the campaign sent to smtp-sink (0: no send half).
        #[arg(long, default_value_t = 100_000)]
        send: u64,
        /// SMTP connections at once (ours and smtp-source's sessions).
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
    /// Count segments (custom fields, engagement, both) over N contacts with custom fields,
    /// messages, opens, clicks and soft bounces, on SQLite (and PostgreSQL when given),
    /// against the floor: a plain count of the tenant's contacts.
    Segments {
        #[arg(long, default_value_t = 100_000)]
        contacts: i64,
        /// A PostgreSQL server to use (a database is created and dropped on it).
        #[arg(long, env = "EE_BENCH_POSTGRES_URL")]
        postgres_url: Option<String>,
    },
    /// Link rewriting on one 1 MB body against ten 100 KB ones: time, bytes read, and the
    /// floor (one search of the same bytes).
    Links {
        #[arg(long, default_value_t = 5)]
        rounds: u32,
    },
    /// One measured campaign send (run by `bench campaign` in a child process).
    #[command(hide = true)]
    CampaignSendRun {
        #[arg(long)]
        database_url: String,
        #[arg(long)]
        recipients: u64,
        #[arg(long)]
        port: u16,
        #[arg(long)]
        dkim: String,
        #[arg(long)]
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
    #[arg(long, value_enum, default_value_t = serve::NodeRole::All)]
    role: serve::NodeRole,
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
    serve::init_logging(&config, matches!(cli.command, Command::Serve(_)))?;
    match cli.command {
        Command::Serve(args) => serve::serve(config, args.role).await,
        Command::Bounce(BounceCommand::Classify { files }) => bounce::classify(&config, &files),
        Command::Migrate => {
            let db = files::open_db(&config).await?;
            println!("migrations applied ({})", db.backend().as_str());
            Ok(())
        }
        Command::User(UserCommand::Create {
            email,
            role,
            tenant,
            password,
        }) => admin::user_create(&config, &email, &role, tenant.as_deref(), password).await,
        Command::Tenant(TenantCommand::Create {
            name,
            slug,
            settings,
        }) => admin::tenant_create(&config, &name, &slug, &settings).await,
        Command::ApiKey(ApiKeyCommand::Create {
            tenant,
            name,
            expires_at,
        }) => admin::api_key_create(&config, &tenant, &name, expires_at.as_deref()).await,
        Command::Bench(BenchCommand::Import {
            rows,
            postgres_url,
            dir,
        }) => tokio::task::block_in_place(|| crate::bench::run(rows, postgres_url.as_deref(), dir)),
        Command::Bench(BenchCommand::Send {
            messages,
            concurrency,
        }) => tokio::task::block_in_place(|| crate::bench_send::run(messages, concurrency)),
        Command::Bench(BenchCommand::Campaign {
            recipients,
            postgres_url,
            send,
            concurrency,
        }) => {
            crate::bench_campaign::run(recipients, postgres_url.as_deref()).await?;
            if send > 0 {
                tokio::task::block_in_place(|| crate::bench_campaign_send::run(send, concurrency))?;
            }
            Ok(())
        }
        Command::Bench(BenchCommand::Segments {
            contacts,
            postgres_url,
        }) => crate::bench_segments::run(contacts, postgres_url.as_deref()).await,
        Command::Bench(BenchCommand::Links { rounds }) => {
            crate::bench_links::run(rounds);
            Ok(())
        }
        Command::Bench(BenchCommand::CampaignSendRun {
            database_url,
            recipients,
            port,
            dkim,
            concurrency,
        }) => {
            crate::bench_campaign_send::run_one(&database_url, recipients, port, &dkim, concurrency)
                .await
        }
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
        }) => dkim::dkim_generate(&algorithm, &selector, domain.as_deref(), out.as_deref()),
        Command::Check(CheckCommand::Dns {
            domain,
            ips,
            dkim,
            json,
        }) => check::check_dns(&config, &domain, &ips, &dkim, json).await,
        Command::Check(CheckCommand::Blacklist { ip, json }) => {
            check::check_blacklist(&config, &ip, json).await
        }
        Command::Pmta(PmtaCommand::Config { out }) => {
            pmta::pmta_config(&config, out.as_deref()).await
        }
        Command::Pmta(PmtaCommand::Deploy) => pmta::pmta_deploy(&config).await,
        Command::Backup {
            out,
            passphrase_file,
            recipient,
        } => {
            let secret = backup::Secret {
                passphrase: backup::Secret::read_passphrase(passphrase_file.as_deref())?,
                recipients: recipient,
                identities: Vec::new(),
            };
            backup::backup(&config, &out, &secret).await
        }
        Command::Restore {
            file,
            passphrase_file,
            identity,
            force,
        } => {
            let secret = backup::Secret {
                passphrase: backup::Secret::read_passphrase(passphrase_file.as_deref())?,
                recipients: Vec::new(),
                identities: identity,
            };
            backup::restore(&config, &file, &secret, force).await
        }
        Command::Import {
            file,
            tenant,
            source,
            errors,
        } => {
            import::import_csv(
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
