//! Configuration: defaults that need nothing, then a TOML file (`--config`), then the
//! environment (`EE_*`, and `DATABASE_URL`), then command-line flags.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Holds the SQLite database, the generated keys and other state.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; a SQLite file in the data dir when absent.
    pub database_url: Option<String>,
    pub listen: String,
    /// How clients reach this server (links in mails); derived from `listen` when absent.
    pub public_url: Option<String>,
    /// The first admin, created on first run.
    pub admin_email: String,
    /// Its password; generated and printed once when absent.
    pub admin_password: Option<String>,
    /// HMAC key for access tokens (≥ 32 characters); generated into the data dir when absent.
    pub jwt_secret: Option<String>,
    /// Base64 of 32 bytes sealing secrets at rest; generated into the data dir when absent.
    pub master_key: Option<String>,
    /// The bearer token `/metrics` wants; generated into `<data dir>/metrics.token` when
    /// absent.
    pub metrics_token: Option<String>,
    /// `auto` (human-readable on a terminal, JSON otherwise), `json` or `pretty`.
    pub log_format: String,
    /// A tracing filter, e.g. `info` or `email_engine=debug,info`. `RUST_LOG` wins.
    pub log_level: String,
    /// Comma-separated allowed CORS origins; `*` for any; empty for none.
    pub cors_origins: String,
    /// Comma-separated addresses or networks of the reverse proxies whose
    /// `X-Forwarded-For` names the client; empty for loopback, `none` for no proxy.
    pub trusted_proxies: String,
    pub rate_limit_per_minute: u32,
    pub ip_rate_limit_per_minute: u32,
    pub access_token_ttl_secs: i64,
    pub refresh_token_ttl_secs: i64,
    pub api_key_grace_secs: i64,
    pub max_body_bytes: usize,
    /// Jobs run at once by this node's worker.
    pub worker_concurrency: usize,
    pub db_max_connections: u32,
    /// Telegram Bot API: base URL (tests point it at a local server), bot token, chat id.
    pub telegram_api_base: String,
    pub telegram_bot_token: Option<String>,
    pub telegram_chat_id: Option<String>,
    /// Generic alert webhook, signed with HMAC-SHA256 (`x-ee-signature`).
    pub alert_webhook_url: Option<String>,
    pub alert_webhook_secret: Option<String>,
    /// Warm-up safety: quarantine above these rates over the window.
    pub warmup_max_bounce_rate: f64,
    pub warmup_max_complaint_rate: f64,
    pub warmup_min_sample: i64,
    pub warmup_window_days: i64,
    pub quarantine_cooldown_hours: i64,
    pub quarantine_step_back_days: i64,
    /// Ranges (CIDR or single addresses, comma-separated) that connections to hosts a
    /// tenant named (MailWizz instances, relays) may reach on top of public addresses:
    /// loopback, private and link-local ones are refused otherwise.
    pub outbound_allow: String,
    /// Name servers for every check, comma-separated `ip` or `ip:port`; the system's when empty.
    pub dns_servers: String,
    pub dns_timeout_ms: u64,
    /// DNS blacklist zones, comma-separated; seed 002's nine when empty.
    pub dnsbl_zones: String,
    /// The port the SMTP probe of contact validation connects to (25; tests change it).
    pub smtp_probe_port: u16,
    /// The MAIL FROM of the probe; the null sender when empty.
    pub smtp_probe_from: String,
    /// Where uploaded CSV files wait for their import.
    pub uploads_dir: Option<PathBuf>,
    /// The port MX hosts are reached on in direct delivery (25; tests change it).
    pub delivery_mx_port: u16,
    /// Delays between delivery attempts after a 4xx or a failed connection; the last repeats.
    pub delivery_retry: String,
    /// After this, an undelivered message expires.
    pub delivery_max_age_hours: i64,
    /// Per provider and IP: messages per hour / connections at once, e.g.
    /// `gmail=3600/5,microsoft=3600/5,yahoo=3600/5,other=36000/20` (any subset).
    pub delivery_limits: String,
    /// Per provider, across every IP and node: messages per second, e.g. `gmail=50,
    /// yahoo=30,microsoft=20` (seed 002's, the defaults); `name=none` lifts one.
    pub provider_rates: String,
    /// Messages claimed and sent at once by this node.
    pub delivery_batch: i64,
    pub delivery_concurrency: usize,
    pub delivery_timeout_secs: u64,
    /// PowerMTA: the generated file's postmaster and host name (this machine's name when
    /// absent), its listeners (`ip:port`, comma-separated), the account our relay mode
    /// authenticates with, where it reads DKIM keys, its management port (loopback only).
    pub pmta_postmaster: Option<String>,
    pub pmta_host_name: Option<String>,
    pub pmta_listeners: String,
    pub pmta_smtp_user: Option<String>,
    pub pmta_smtp_password: Option<String>,
    pub pmta_dkim_dir: String,
    pub pmta_http_mgmt_port: u16,
    /// PowerMTA deploy over SSH (OpenSSH client; the host key must be in known_hosts):
    /// host, port, user, private key and known_hosts file; the configuration's path there
    /// and the commands that validate a file (`{config}` stands for its path), reload, and
    /// report status.
    pub pmta_ssh_host: Option<String>,
    pub pmta_ssh_port: u16,
    pub pmta_ssh_user: String,
    pub pmta_ssh_key: Option<String>,
    pub pmta_ssh_known_hosts: Option<String>,
    pub pmta_config_path: String,
    pub pmta_validate_command: String,
    pub pmta_reload_command: String,
    pub pmta_status_command: String,
    /// PowerMTA's HTTP management address, polled for its status (`http://127.0.0.1:1983`).
    pub pmta_status_url: Option<String>,
    /// Bounce classification rules of this deployment (the shipped rules' format), tried
    /// before the shipped ones.
    pub feedback_rules_file: Option<PathBuf>,
    /// Traffic-shaping data of this deployment (providers by MX suffix, rules acting on
    /// replies; the shipped data's format), read before the shipped data.
    pub shaping_rules_file: Option<PathBuf>,
    /// PowerMTA's accounting file on this node (`/var/log/pmta/acct.csv`), followed by its
    /// worker across rotations.
    pub pmta_accounting_file: Option<PathBuf>,
    /// Where the bounce listener takes DSNs and ARF reports (`0.0.0.0:25`; off when
    /// absent), and the report addresses it takes besides per-message return paths
    /// (comma-separated: `fbl@bounces.brand.example`).
    pub feedback_smtp_listen: Option<String>,
    pub feedback_smtp_accept: String,
    /// The address DMARC aggregate reports are sent to (`dmarc@bounces.brand.example`):
    /// named as `rua` in every domain's DMARC record and taken by the bounce listener,
    /// whose host must receive its domain's mail. Empty: no `rua`, no report taken.
    pub dmarc_report_address: String,
    /// The health job's thresholds: the least free share of the data directory's disk,
    /// the most memory in use, the most messages due and waiting.
    pub health_min_free_disk: f64,
    /// SQLite: below this much free space (MiB) on the database's disk, writes are
    /// refused (507) before they start; 0 never refuses.
    pub min_free_disk_mb: u64,
    pub health_max_memory: f64,
    pub health_max_backlog: i64,
    /// IP ranges whose opens and clicks are machines' (Apple's mail privacy proxy, a mail
    /// gateway's link scanner): `17.0.0.0/8, 2620:149::/32`.
    pub tracking_machine_ranges: String,
    /// How long a claimed message stays this node's: after a crash, another node (or this
    /// one restarted) takes it over when the lease runs out.
    pub delivery_lease_secs: i64,
    /// This node's name in its leases and its jobs' claims (which node holds what):
    /// `<host name>-<process id>` when absent.
    pub node_name: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            database_url: None,
            listen: "127.0.0.1:8000".into(),
            public_url: None,
            admin_email: "admin@email-engine.local".into(),
            admin_password: None,
            jwt_secret: None,
            master_key: None,
            metrics_token: None,
            log_format: "auto".into(),
            log_level: "info".into(),
            cors_origins: String::new(),
            trusted_proxies: String::new(),
            rate_limit_per_minute: 100,
            ip_rate_limit_per_minute: 100,
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_secs: 30 * 86_400,
            api_key_grace_secs: 86_400,
            max_body_bytes: 2 * 1024 * 1024,
            worker_concurrency: 4,
            db_max_connections: 16,
            telegram_api_base: "https://api.telegram.org".into(),
            telegram_bot_token: None,
            telegram_chat_id: None,
            alert_webhook_url: None,
            alert_webhook_secret: None,
            outbound_allow: String::new(),
            warmup_max_bounce_rate: 0.05,
            warmup_max_complaint_rate: 0.001,
            warmup_min_sample: 50,
            warmup_window_days: 3,
            quarantine_cooldown_hours: 72,
            quarantine_step_back_days: 7,
            dns_servers: String::new(),
            dns_timeout_ms: 5_000,
            dnsbl_zones: String::new(),
            smtp_probe_port: 25,
            smtp_probe_from: String::new(),
            uploads_dir: None,
            delivery_mx_port: 25,
            delivery_retry: "5m,15m,1h,4h,8h,12h,24h".into(),
            delivery_max_age_hours: 168,
            delivery_limits: String::new(),
            provider_rates: String::new(),
            delivery_batch: 200,
            delivery_concurrency: 16,
            delivery_timeout_secs: 60,
            delivery_lease_secs: 15,
            node_name: None,
            pmta_postmaster: None,
            pmta_host_name: None,
            pmta_listeners: "0.0.0.0:2525".into(),
            pmta_smtp_user: None,
            pmta_smtp_password: None,
            pmta_dkim_dir: "/etc/pmta/dkim".into(),
            pmta_http_mgmt_port: 1983,
            pmta_ssh_host: None,
            pmta_ssh_port: 22,
            pmta_ssh_user: "root".into(),
            pmta_ssh_key: None,
            pmta_ssh_known_hosts: None,
            pmta_config_path: ee_connectors::pmta_deploy::RemotePlan::default().config_path,
            pmta_validate_command: ee_connectors::pmta_deploy::RemotePlan::default()
                .validate_command,
            pmta_reload_command: ee_connectors::pmta_deploy::RemotePlan::default().reload_command,
            pmta_status_command: ee_connectors::pmta_deploy::RemotePlan::default().status_command,
            pmta_status_url: None,
            feedback_rules_file: None,
            shaping_rules_file: None,
            pmta_accounting_file: None,
            feedback_smtp_listen: None,
            feedback_smtp_accept: String::new(),
            dmarc_report_address: String::new(),
            health_min_free_disk: 0.10,
            min_free_disk_mb: 64,
            health_max_memory: 0.90,
            health_max_backlog: 100_000,
            tracking_machine_ranges: String::new(),
        }
    }
}

/// Values given as flags, which win over everything else.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
}

impl Config {
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.is_file() {
                bail!("configuration file {} does not exist", path.display());
            }
            figment = figment.merge(Toml::file(path));
        }
        let known: Vec<String> = serde_json::to_value(Config::default())?
            .as_object()
            .map(|o| o.keys().map(|k| k.to_uppercase()).collect())
            .unwrap_or_default();
        figment = figment
            .merge(
                Env::prefixed("EE_")
                    .filter(move |key| known.iter().any(|k| k == &key.as_str().to_uppercase())),
            )
            .merge(Env::raw().only(&["DATABASE_URL"]))
            .merge(Serialized::defaults(overrides));
        let config: Config = figment.extract().context("invalid configuration")?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> anyhow::Result<()> {
        if !["auto", "json", "pretty"].contains(&self.log_format.as_str()) {
            bail!(
                "log_format must be auto, json or pretty, not {:?}",
                self.log_format
            );
        }
        if let Some(secret) = &self.jwt_secret
            && secret.len() < 32
        {
            bail!("jwt_secret (EE_JWT_SECRET) must be at least 32 characters");
        }
        if self.rate_limit_per_minute == 0 || self.ip_rate_limit_per_minute == 0 {
            bail!("rate limits must be at least 1 request per minute");
        }
        if self.access_token_ttl_secs < 1
            || self.refresh_token_ttl_secs < self.access_token_ttl_secs
        {
            bail!(
                "access_token_ttl_secs must be positive and no longer than refresh_token_ttl_secs"
            );
        }
        if !(0.0..=1.0).contains(&self.warmup_max_bounce_rate)
            || !(0.0..=1.0).contains(&self.warmup_max_complaint_rate)
        {
            bail!("warm-up rates are fractions: 0.05 means 5 %");
        }
        if self.warmup_window_days < 1
            || self.quarantine_step_back_days < 0
            || self.quarantine_cooldown_hours < 0
        {
            bail!(
                "warmup_window_days must be at least 1; cool-down and step-back must not be negative"
            );
        }
        if self.telegram_bot_token.is_some() != self.telegram_chat_id.is_some() {
            bail!("telegram_bot_token and telegram_chat_id go together");
        }
        if let Err(e) = ee_dns::ResolverSettings::parse_servers(&self.dns_servers) {
            bail!("dns_servers (EE_DNS_SERVERS): {e}");
        }
        if self.alert_webhook_url.is_some() && self.alert_webhook_secret.is_none() {
            bail!("alert_webhook_url needs alert_webhook_secret to sign with");
        }
        self.outbound_policy()?;
        Ok(())
    }

    /// Where connections to hosts a tenant named may go.
    pub fn outbound_policy(&self) -> anyhow::Result<ee_core::outbound::OutboundPolicy> {
        ee_core::outbound::OutboundPolicy::parse(&self.outbound_allow)
            .map_err(|e| anyhow::anyhow!("outbound_allow (EE_OUTBOUND_ALLOW): {e}"))
    }

    /// The message pipeline's settings; `tracking_key` and `sealer` come from the keys.
    pub fn delivery_settings(
        &self,
        tracking_key: Vec<u8>,
        sealer: ee_core::secrets::Sealer,
    ) -> anyhow::Result<ee_app::delivery::DeliverySettings> {
        let delays = ee_core::delivery::RetryPolicy::parse_delays(&self.delivery_retry)
            .map_err(|e| anyhow::anyhow!("delivery_retry: {e}"))?;
        let shaping = self.shaping()?;
        let limits = ee_core::delivery::DestinationLimits::parse(&self.delivery_limits)
            .map_err(|e| anyhow::anyhow!("delivery_limits: {e}"))?;
        if let Some(name) = limits.named.keys().find(|n| !shaping.knows(n)) {
            anyhow::bail!(
                "delivery_limits: `{name}` is no provider of the shaping data (add a `provider` line to shaping_rules_file)"
            );
        }
        let rates = ee_core::provider_rates::ProviderRates::parse(&self.provider_rates)
            .map_err(|e| anyhow::anyhow!("provider_rates: {e}"))?;
        if let Some(name) = rates.per_second.keys().find(|n| !shaping.knows(n)) {
            anyhow::bail!(
                "provider_rates: `{name}` is no provider of the shaping data (add a `provider` line to shaping_rules_file)"
            );
        }
        if self.delivery_batch < 1 || self.delivery_concurrency < 1 {
            anyhow::bail!("delivery_batch and delivery_concurrency must be at least 1");
        }
        Ok(ee_app::delivery::DeliverySettings {
            public_url: self.public_url(),
            tracking_key,
            sealer: Some(sealer),
            retry: ee_core::delivery::RetryPolicy {
                delays_secs: delays,
                max_age_secs: self.delivery_max_age_hours.max(1) * 3600,
            },
            limits,
            rates,
            shaping: std::sync::Arc::new(shaping),
            mx_port: self.delivery_mx_port,
            timeout: std::time::Duration::from_secs(self.delivery_timeout_secs.max(1)),
            batch: self.delivery_batch,
            concurrency: self.delivery_concurrency,
            lease_ms: self.delivery_lease_secs.max(1) * 1000,
            node: self.node_name(),
            machine: ee_core::machine_hits::MachineRules {
                ranges: ee_core::machine_hits::MachineRules::parse_ranges(
                    &self.tracking_machine_ranges,
                )
                .map_err(|e| anyhow::anyhow!("tracking_machine_ranges: {e}"))?,
                ..Default::default()
            },
            ..Default::default()
        })
    }

    pub fn pmta_settings(&self, machine_name: &str) -> ee_app::delivery::powermta::PmtaSettings {
        let host_name = self
            .pmta_host_name
            .clone()
            .unwrap_or_else(|| machine_name.to_owned());
        ee_app::delivery::powermta::PmtaSettings {
            postmaster: self
                .pmta_postmaster
                .clone()
                .unwrap_or_else(|| format!("postmaster@{host_name}")),
            host_name,
            listeners: self
                .pmta_listeners
                .split(',')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect(),
            smtp_user: self
                .pmta_smtp_user
                .clone()
                .map(|u| (u, self.pmta_smtp_password.clone().unwrap_or_default())),
            dkim_dir: self.pmta_dkim_dir.clone(),
            http_mgmt_port: self.pmta_http_mgmt_port,
            ssh: self.pmta_ssh_host.as_ref().map(|host| {
                let mut target = ee_connectors::ssh::SshTarget::new(
                    host,
                    self.pmta_ssh_port,
                    &self.pmta_ssh_user,
                );
                target.identity_file = self.pmta_ssh_key.as_ref().map(Into::into);
                target.known_hosts = self.pmta_ssh_known_hosts.as_ref().map(Into::into);
                target
            }),
            remote: ee_connectors::pmta_deploy::RemotePlan {
                config_path: self.pmta_config_path.clone(),
                dkim_dir: self.pmta_dkim_dir.clone(),
                validate_command: self.pmta_validate_command.clone(),
                reload_command: self.pmta_reload_command.clone(),
                status_command: self.pmta_status_command.clone(),
            },
            status_url: self.pmta_status_url.clone(),
        }
    }

    /// The classification rules: the deployment's file (checked, with its line named when
    /// wrong) before the shipped rules.
    pub fn feedback_settings(&self) -> anyhow::Result<ee_app::feedback::FeedbackSettings> {
        let dmarc_address = match self.dmarc_report_address.trim() {
            "" => None,
            a => {
                ee_core::contacts::normalize(a, Default::default())
                    .map_err(|_| anyhow::anyhow!("dmarc_report_address {a} is no address"))?;
                Some(a.to_ascii_lowercase())
            }
        };
        let Some(path) = &self.feedback_rules_file else {
            return Ok(ee_app::feedback::FeedbackSettings {
                dmarc_address,
                ..Default::default()
            });
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("feedback_rules_file {}", path.display()))?;
        let rules = ee_core::feedback::Rules::with_extra(&text)
            .with_context(|| format!("feedback_rules_file {}", path.display()))?;
        Ok(ee_app::feedback::FeedbackSettings {
            rules: std::sync::Arc::new(rules),
            dmarc_address,
        })
    }

    /// The traffic-shaping data: the deployment's file (checked, with its line named when
    /// wrong) before the shipped data.
    pub fn shaping(&self) -> anyhow::Result<ee_core::shaping::Shaping> {
        let Some(path) = &self.shaping_rules_file else {
            return Ok(ee_core::shaping::Shaping::shipped());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("shaping_rules_file {}", path.display()))?;
        ee_core::shaping::Shaping::with_extra(&text)
            .with_context(|| format!("shaping_rules_file {}", path.display()))
    }

    pub fn infra_settings(&self) -> ee_app::infra::InfraSettings {
        ee_app::infra::InfraSettings {
            safety: ee_core::warmup::Safety {
                max_bounce_rate: self.warmup_max_bounce_rate,
                max_complaint_rate: self.warmup_max_complaint_rate,
                min_sample: self.warmup_min_sample,
            },
            window_days: self.warmup_window_days,
            quarantine_cooldown_ms: self.quarantine_cooldown_hours * 3_600_000,
            release_step_back_days: self.quarantine_step_back_days,
        }
    }

    pub fn resolver_settings(&self) -> anyhow::Result<ee_dns::ResolverSettings> {
        let servers = ee_dns::ResolverSettings::parse_servers(&self.dns_servers)
            .map_err(|e| anyhow::anyhow!("dns_servers (EE_DNS_SERVERS): {e}"))?;
        Ok(ee_dns::ResolverSettings {
            servers,
            timeout: std::time::Duration::from_millis(self.dns_timeout_ms.max(100)),
            attempts: 2,
        })
    }

    pub fn dnsbl_zones(&self) -> Vec<String> {
        let configured: Vec<String> = self
            .dnsbl_zones
            .split(',')
            .map(str::trim)
            .filter(|z| !z.is_empty())
            .map(str::to_owned)
            .collect();
        if configured.is_empty() {
            ee_dns::dnsbl::DEFAULT_ZONES
                .iter()
                .map(|(_, zone)| (*zone).to_owned())
                .collect()
        } else {
            configured
        }
    }

    pub fn alert_channels(&self) -> ee_connectors::alerts::AlertChannels {
        use ee_connectors::alerts::{AlertChannels, Telegram, Webhook};
        let telegram = match (&self.telegram_bot_token, &self.telegram_chat_id) {
            (Some(token), Some(chat)) => Some(Telegram {
                api_base: self.telegram_api_base.clone(),
                bot_token: token.clone(),
                chat_id: chat.clone(),
            }),
            _ => None,
        };
        let webhook = match (&self.alert_webhook_url, &self.alert_webhook_secret) {
            (Some(url), Some(secret)) => Some(Webhook {
                url: url.clone(),
                secret: secret.clone(),
            }),
            _ => None,
        };
        AlertChannels::new(telegram, webhook)
    }

    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}",
                self.data_dir.join("email-engine.db").display()
            )
        })
    }

    /// This node's name: `node_name`, or `<host name>-<process id>`.
    pub fn node_name(&self) -> String {
        self.node_name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| format!("{}-{}", host_name(), std::process::id()))
    }

    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
            .trim_end_matches('/')
            .to_owned()
    }

    pub fn trusted_proxies(&self) -> anyhow::Result<ee_core::client_address::TrustedProxies> {
        ee_core::client_address::TrustedProxies::parse(&self.trusted_proxies)
            .map_err(|e| anyhow::anyhow!("EE_TRUSTED_PROXIES: {e}"))
    }

    pub fn cors_origins(&self) -> Vec<String> {
        self.cors_origins
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// The machine's host name (`node` when it cannot be read).
pub fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_nothing() {
        let config = Config::default();
        assert!(config.check().is_ok());
        assert_eq!(config.database_url(), "sqlite://./data/email-engine.db");
        assert_eq!(config.public_url(), "http://127.0.0.1:8000");
        assert!(config.cors_origins().is_empty());
    }

    #[test]
    fn file_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ee.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:9999\"\ncors_origins = \"https://a.test, https://b.test\"\nrate_limit_per_minute = 7\n").unwrap();
        let overrides = Overrides {
            listen: Some("127.0.0.1:7777".into()),
            ..Default::default()
        };
        let config = Config::load(Some(&path), &overrides).unwrap();
        assert_eq!(config.listen, "127.0.0.1:7777");
        assert_eq!(config.rate_limit_per_minute, 7);
        assert_eq!(config.cors_origins(), ["https://a.test", "https://b.test"]);
        assert!(
            Config::load(
                Some(&dir.path().join("missing.toml")),
                &Overrides::default()
            )
            .is_err()
        );
        std::fs::write(&path, "listn = \"typo\"\n").unwrap();
        let err = Config::load(Some(&path), &Overrides::default()).unwrap_err();
        assert!(format!("{err:#}").contains("listn"), "{err:#}");
    }

    #[test]
    fn provider_rates_default_to_the_seeds_and_are_checked() {
        let settings = |rates: &str| {
            let config = Config {
                provider_rates: rates.into(),
                ..Default::default()
            };
            config.delivery_settings(
                vec![0; 32],
                ee_core::secrets::Sealer::new(&[7; 32]).unwrap(),
            )
        };
        let rates = settings("").unwrap().rates;
        assert_eq!(rates, ee_core::provider_rates::ProviderRates::default());
        assert_eq!(rates.per_second["gmail"], 50);
        assert_eq!(
            settings("orange=10").unwrap().rates.per_second["orange"],
            10
        );
        for (bad, named) in [("gmail=0", "gmail=0"), ("nowhere=5", "nowhere")] {
            let err = settings(bad).unwrap_err().to_string();
            assert!(
                err.starts_with("provider_rates:") && err.contains(named),
                "{err}"
            );
        }
    }
}
