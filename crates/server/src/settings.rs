/// What the HTTP layer needs to know; the binary fills it from its configuration.
#[derive(Clone)]
pub struct Settings {
    /// The address clients reach us at (links in mails, OpenAPI servers).
    pub public_url: String,
    /// Allowed CORS origins; empty allows none, `*` allows any.
    pub cors_origins: Vec<String>,
    /// The reverse proxies whose `X-Forwarded-For` names the client (loopback by default).
    pub trusted_proxies: ee_core::client_address::TrustedProxies,
    /// Requests per minute per credential (API key or token).
    pub rate_limit_per_minute: u32,
    /// Requests per minute per client IP address.
    pub ip_rate_limit_per_minute: u32,
    pub access_token_ttl_secs: i64,
    pub refresh_token_ttl_secs: i64,
    /// How long a rotated API key's previous secret keeps working.
    pub api_key_grace_secs: i64,
    pub max_body_bytes: usize,
    /// HMAC key for access tokens.
    pub jwt_secret: Vec<u8>,
    /// Where uploaded CSV files wait for their import.
    pub uploads_dir: std::path::PathBuf,
    /// The largest upload accepted.
    pub max_upload_bytes: u64,
    /// Seals secrets at rest (DKIM private keys …) with the master key.
    pub sealer: ee_core::secrets::Sealer,
    /// The bearer token `/metrics` wants (it lists every tenant's IPs and domains);
    /// `None` turns the endpoint off.
    pub metrics_token: Option<String>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("public_url", &self.public_url)
            .field("cors_origins", &self.cors_origins)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("rate_limit_per_minute", &self.rate_limit_per_minute)
            .field("ip_rate_limit_per_minute", &self.ip_rate_limit_per_minute)
            .field("access_token_ttl_secs", &self.access_token_ttl_secs)
            .field("refresh_token_ttl_secs", &self.refresh_token_ttl_secs)
            .field("api_key_grace_secs", &self.api_key_grace_secs)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("jwt_secret", &"[redacted]")
            .field(
                "metrics_token",
                &self.metrics_token.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

impl Settings {
    /// Defaults for everything but the keys.
    pub fn new(jwt_secret: Vec<u8>, sealer: ee_core::secrets::Sealer) -> Self {
        Self {
            public_url: "http://127.0.0.1:8000".into(),
            cors_origins: Vec::new(),
            trusted_proxies: Default::default(),
            rate_limit_per_minute: 100,
            ip_rate_limit_per_minute: 100,
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_secs: 30 * 86_400,
            api_key_grace_secs: 86_400,
            max_body_bytes: 2 * 1024 * 1024,
            jwt_secret,
            sealer,
            uploads_dir: std::env::temp_dir().join("email-engine-uploads"),
            max_upload_bytes: 2 * 1024 * 1024 * 1024,
            metrics_token: None,
        }
    }
}
