//! A real server on an ephemeral loopback port, over a fresh database.
#![allow(clippy::unwrap_used, dead_code)]

pub mod browser;
pub mod dmarc;
pub mod mail_check;
pub mod sending;
pub mod signatures;

use std::net::SocketAddr;

use ee_app::access::bootstrap::ensure_admin;
use ee_core::clock::Clock;
use ee_dns::testing::{TestDnsServer, Zone};
use ee_server::{AppState, Settings};
use ee_store::Db;
use ee_store::testing::TestDatabase;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ADMIN_EMAIL: &str = "admin@example.test";
pub const ADMIN_PASSWORD: &str = "admin-password-1234";
pub const JWT_SECRET: &[u8] = b"test-secret-test-secret-test-secret!";
pub const METRICS_TOKEN: &str = "test-metrics-token";
/// The DNS blacklists a test server checks.
pub const DNSBL_ZONES: [&str; 2] = ["bl.test.example", "dnsbl.test.example"];

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub db: Db,
    pub clock: Clock,
    pub admin: String,
    pub services: ee_app::Services,
    pub dns: TestDnsServer,
    /// The server's settings, for another node over the same database.
    pub settings: Settings,
    test_db: Option<TestDatabase>,
    /// The server's upload directory, removed with the application.
    _uploads: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

/// What else a test server runs with.
pub struct Options {
    pub alerts: ee_connectors::alerts::AlertChannels,
    pub zone: Zone,
    /// The port the SMTP probe connects to.
    pub probe_port: u16,
    /// The port direct delivery reaches MX hosts on.
    pub mx_port: u16,
    pub retry: ee_core::delivery::RetryPolicy,
    pub limits: ee_core::delivery::DestinationLimits,
    /// Providers' rates across IPs (seed 002's unless a test sets its own).
    pub rates: ee_core::provider_rates::ProviderRates,
    /// The port MTA-STS policies are fetched on, and the roots trusted for them.
    pub mta_sts_port: u16,
    pub mta_sts_roots: Vec<Vec<u8>>,
    /// Providers and shaping rules (the shipped ones unless a test adds its own).
    pub shaping: std::sync::Arc<ee_core::shaping::Shaping>,
    pub pmta: ee_app::delivery::powermta::PmtaSettings,
    /// Where connections to tenant-named hosts may go.
    pub outbound: std::sync::Arc<ee_core::outbound::OutboundPolicy>,
    /// The address DMARC aggregate reports are sent to (none: no `rua`).
    pub dmarc_address: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            alerts: Default::default(),
            zone: Zone::new(),
            probe_port: 25,
            mx_port: 25,
            retry: Default::default(),
            limits: Default::default(),
            rates: Default::default(),
            shaping: std::sync::Arc::new(ee_core::shaping::Shaping::shipped()),
            mta_sts_port: 443,
            mta_sts_roots: Vec::new(),
            pmta: Default::default(),
            // The test peers (SMTP, the fake MailWizz) listen on loopback: allowed here
            // explicitly, as an operator would allow a private PowerMTA host.
            outbound: std::sync::Arc::new(
                ee_core::outbound::OutboundPolicy::parse("127.0.0.0/8, ::1").unwrap(),
            ),
            dmarc_address: None,
        }
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

/// How a test application is set up: the server's settings and the peers it runs with.
/// `TestApp::spawn()` is `TestApp::builder().spawn()`.
#[must_use]
pub struct Builder {
    configure: Box<dyn FnOnce(&mut Settings)>,
    options: Options,
}

impl Builder {
    /// Changes the server's settings (limits, tokens, directories…).
    pub fn settings(mut self, configure: impl FnOnce(&mut Settings) + 'static) -> Self {
        self.configure = Box::new(configure);
        self
    }

    /// Alert channels pointed at local servers.
    pub fn alerts(mut self, alerts: ee_connectors::alerts::AlertChannels) -> Self {
        self.options.alerts = alerts;
        self
    }

    /// DNS zones served on loopback.
    pub fn zone(mut self, zone: Zone) -> Self {
        self.options.zone = zone;
        self
    }

    /// Everything else the server runs with.
    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// Starts the server on an ephemeral port with its own database, DNS server and
    /// upload directory, all removed when the application is finished or dropped.
    pub async fn spawn(self) -> TestApp {
        TestApp::start(self.configure, self.options).await
    }
}

impl TestApp {
    pub fn builder() -> Builder {
        Builder {
            configure: Box::new(|_| {}),
            options: Options::default(),
        }
    }

    pub async fn spawn() -> Self {
        Self::builder().spawn().await
    }

    async fn start(configure: Box<dyn FnOnce(&mut Settings)>, options: Options) -> Self {
        let Options {
            alerts,
            mut zone,
            probe_port,
            ..
        } = options;
        // The test lists pass their self-test (RFC 5782 §5: 127.0.0.2 listed).
        for list in DNSBL_ZONES {
            zone.add(
                &format!("2.0.0.127.{list}"),
                ee_dns::testing::Rec::A("127.0.0.2".parse().unwrap()),
            );
        }
        let dns = TestDnsServer::start(zone).await.expect("test DNS server");
        let test_db = TestDatabase::create().await.expect("test database");
        let db = test_db.connect().await.expect("migrated database");
        let now = Clock::System.now_ms();
        let clock = Clock::manual(now);
        ensure_admin(&db, ADMIN_EMAIL, Some(ADMIN_PASSWORD), now)
            .await
            .expect("admin");
        let sealer = ee_core::secrets::Sealer::new(&[7u8; 32]).unwrap();
        let mut settings = Settings::new(JWT_SECRET.to_vec(), sealer);
        settings.rate_limit_per_minute = 100_000;
        settings.ip_rate_limit_per_minute = 100_000;
        settings.metrics_token = Some(METRICS_TOKEN.into());
        let uploads = tempfile::Builder::new()
            .prefix("ee-uploads-")
            .tempdir()
            .expect("upload directory");
        settings.uploads_dir = uploads.path().to_owned();
        configure(&mut settings);
        let services = ee_app::Services {
            alerts,
            dnsbl_zones: DNSBL_ZONES.iter().map(|z| (*z).to_owned()).collect(),
            probe: ee_app::contacts::validation::ProbeSettings {
                port: probe_port,
                timeout: std::time::Duration::from_secs(3),
                // The test SMTP server (mailin) refuses the null sender.
                mail_from: "probe@probe.test".into(),
                ..Default::default()
            },
            delivery: ee_app::delivery::DeliverySettings {
                public_url: "http://ee.test".into(),
                tracking_key: b"test-tracking-key".to_vec(),
                sealer: Some(settings.sealer.clone()),
                mx_port: options.mx_port,
                timeout: std::time::Duration::from_secs(2),
                retry: options.retry.clone(),
                limits: options.limits.clone(),
                rates: options.rates.clone(),
                shaping: options.shaping.clone(),
                mta_sts_port: options.mta_sts_port,
                mta_sts_roots: options.mta_sts_roots.clone(),
                // The test SMTP server's certificate is self-signed.
                allow_invalid_certs: true,
                ..Default::default()
            },
            pmta: options.pmta.clone(),
            outbound: options.outbound.clone(),
            feedback: ee_app::feedback::FeedbackSettings {
                dmarc_address: options.dmarc_address.clone(),
                ..Default::default()
            },
            ..ee_app::Services::new(
                db.clone(),
                clock.clone(),
                ee_dns::Resolver::new(&dns.resolver_settings()).unwrap(),
            )
        };
        let state = AppState::new(settings.clone(), services.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(ee_server::serve(listener, state, async move {
            let _ = stopped.await;
        }));
        let mut app = Self {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            db,
            clock,
            admin: String::new(),
            services,
            dns,
            settings,
            test_db: Some(test_db),
            _uploads: uploads,
            stop: Some(stop),
            server: Some(server),
        };
        app.admin = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        app
    }

    /// Delivers the queue until nothing is due; returns how many attempts were made.
    pub async fn deliver(&self) -> usize {
        ee_jobs::delivery::Engine::new(self.services.clone())
            .run_until_idle()
            .await
            .expect("delivery")
    }

    /// Runs the campaign dispatcher until a pass finds nothing to do; what it did in all.
    pub async fn dispatch(&self) -> ee_app::campaigns::dispatch::Pass {
        let mut total = ee_app::campaigns::dispatch::Pass::default();
        for _ in 0..1000 {
            let pass = ee_app::campaigns::dispatch::run_once(&self.services)
                .await
                .expect("campaign dispatch");
            if !pass.did_work() {
                return total;
            }
            total.started += pass.started;
            total.queued += pass.queued;
            total.finished += pass.finished;
            total.decided += pass.decided;
        }
        panic!("the dispatcher keeps finding work");
    }

    /// Dispatches and delivers in turn until neither finds work (the dispatcher keeps only
    /// a few batches of a campaign in the queue); what the dispatcher did in all.
    pub async fn dispatch_and_deliver(&self) -> ee_app::campaigns::dispatch::Pass {
        let mut total = ee_app::campaigns::dispatch::Pass::default();
        for _ in 0..1000 {
            let pass = self.dispatch().await;
            let delivered = self.deliver().await;
            if !pass.did_work() && delivered == 0 {
                return total;
            }
            total.started += pass.started;
            total.queued += pass.queued;
            total.finished += pass.finished;
            total.decided += pass.decided;
        }
        panic!("dispatch and delivery keep finding work");
    }

    /// Runs queued jobs that are due, as a worker would, until none is left; returns how many ran.
    pub async fn run_jobs(&self) -> usize {
        let worker = ee_jobs::Worker::new(
            self.db.clone(),
            self.clock.clone(),
            ee_jobs::WorkerConfig::new("test-worker"),
            ee_jobs::standard_registry(self.services.clone()),
        );
        let mut ran = 0;
        while worker.run_once().await.expect("job claimed") {
            ran += 1;
            assert!(ran < 1000, "jobs keep coming");
        }
        ran
    }

    pub async fn finish(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        self.db.close().await;
        if let Some(test_db) = self.test_db.take() {
            test_db.drop_database().await.unwrap();
        }
    }

    /// Another API node: a server of its own (its own memory, its own port) over the
    /// same database, with the same settings.
    pub async fn another_node(&self) -> Node {
        let state = AppState::new(self.settings.clone(), self.services.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(ee_server::serve(listener, state, async move {
            let _ = stopped.await;
        }));
        Node {
            base: format!("http://{addr}"),
            stop,
            server,
        }
    }

    /// A request with an optional credential: an access token or an `ee_` API key
    /// (sent as X-API-KEY, as the seeds' clients do).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        credential: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        self.call_on(&self.base, method, path, credential, body)
            .await
    }

    /// `call`, to the node at `base`.
    pub async fn call_on(
        &self,
        base: &str,
        method: Method,
        path: &str,
        credential: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self.client.request(method, format!("{base}{path}"));
        if let Some(credential) = credential {
            request = if credential.starts_with("ee_") {
                request.header("X-API-KEY", credential)
            } else {
                request.bearer_auth(credential)
            };
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// The Prometheus text of `/metrics`, scraped with the metrics token.
    pub async fn metrics(&self) -> String {
        let reply = self
            .call(Method::GET, "/metrics", Some(METRICS_TOKEN), None)
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        reply.body.as_str().unwrap().to_owned()
    }

    pub async fn get(&self, path: &str, credential: &str) -> Reply {
        self.call(Method::GET, path, Some(credential), None).await
    }

    pub async fn post(&self, path: &str, credential: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(credential), Some(body))
            .await
    }

    /// Adds an address to the tenant's suppression list (asserted created).
    pub async fn suppress(&self, credential: &str, email: &str, reason: &str) {
        let suppressed = self
            .post(
                "/api/v2/suppressions",
                credential,
                json!({"email": email, "reason": reason}),
            )
            .await;
        assert_eq!(
            suppressed.status,
            StatusCode::CREATED,
            "{}",
            suppressed.body
        );
    }

    pub async fn login(&self, email: &str, password: &str) -> Value {
        let reply = self
            .call(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({"email": email, "password": password})),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "login {email}: {}",
            reply.body
        );
        reply.body
    }

    /// Creates a tenant (as admin) and returns its id.
    pub async fn tenant(&self, slug: &str) -> String {
        let reply = self
            .post(
                "/api/v1/tenants",
                &self.admin,
                json!({"name": slug.to_uppercase(), "slug": slug}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.body["id"].as_str().unwrap().to_owned()
    }

    /// Creates a tenant user and returns its access token.
    pub async fn tenant_user(&self, tenant_id: &str, email: &str) -> String {
        let reply = self
            .post("/api/v1/users", &self.admin, json!({"email": email, "password": "user-password-1234", "role": "user", "tenant_id": tenant_id}))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        self.login(email, "user-password-1234").await["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Gives the tenant of `key` the signing domain `brand.test` (Ed25519 DKIM), so that
    /// `…@brand.test` may send.
    pub async fn signing_domain(&self, key: &str) {
        let domain = self
            .post(
                "/api/v1/domains",
                key,
                json!({"domain": "brand.test", "dkim_selector": "s1", "dkim_algorithm": "ed25519"}),
            )
            .await;
        assert_eq!(domain.status, StatusCode::CREATED, "{}", domain.body);
    }

    /// Makes the tenant `slug` (of `key`) deliver through a relay `pmta` on a loopback port.
    pub async fn relay_mode(&self, key: &str, slug: &str, port: u16) {
        let relay = self
            .post(
                "/api/v1/relays",
                key,
                json!({"name": "pmta", "host": "127.0.0.1", "port": port, "tls": "none"}),
            )
            .await;
        assert_eq!(relay.status, StatusCode::CREATED, "{}", relay.body);
        let mode = self
            .call(
                Method::PUT,
                &format!("/api/v1/tenants/{slug}/delivery"),
                Some(key),
                Some(json!({"mode": "relay", "relay": "pmta"})),
            )
            .await;
        assert_eq!(mode.status, StatusCode::OK, "{}", mode.body);
    }

    /// Creates an API key for a tenant (as admin): (id, key).
    pub async fn api_key(&self, tenant_id: &str, name: &str) -> (String, String) {
        let reply = self
            .post(
                "/api/v1/api-keys",
                &self.admin,
                json!({"name": name, "tenant_id": tenant_id}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        (
            reply.body["id"].as_str().unwrap().to_owned(),
            reply.body["key"].as_str().unwrap().to_owned(),
        )
    }
}

/// Another API node of a test application (`TestApp::another_node`).
pub struct Node {
    pub base: String,
    stop: oneshot::Sender<()>,
    server: JoinHandle<std::io::Result<()>>,
}

impl Node {
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.server.await;
    }
}

/// A person's browser, for opens and clicks that must count as a person's.
pub const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36";

/// Asserts the JSON error shape and returns its code.
pub fn error_code(reply: &Reply) -> String {
    let error = &reply.body["error"];
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "error body: {}",
        reply.body
    );
    error["code"].as_str().expect("error code").to_owned()
}
