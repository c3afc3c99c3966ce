use std::sync::Arc;

use ee_app::Db;
use ee_core::clock::Clock;

use crate::auth::tokens::JwtKeys;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimits;
use crate::settings::Settings;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub db: Db,
    pub clock: Clock,
    pub settings: Settings,
    /// What the scheduled jobs use, for the same operations on demand.
    pub services: ee_app::Services,
    pub jwt: JwtKeys,
    pub metrics: Metrics,
    pub limits: RateLimits,
    /// Writes opens and clicks in batches.
    pub hits: ee_app::feedback::engagement::HitRecorder,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(settings: Settings, services: ee_app::Services) -> Self {
        let (db, clock) = (services.db.clone(), services.clock.clone());
        let jwt = JwtKeys::new(&settings.jwt_secret);
        let limits = RateLimits::new(
            settings.rate_limit_per_minute,
            settings.ip_rate_limit_per_minute,
            &db,
            &clock,
        );
        Self(Arc::new(Inner {
            db,
            clock,
            settings,
            services: services.clone(),
            jwt,
            metrics: Metrics::new(),
            limits,
            hits: ee_app::feedback::engagement::HitRecorder::spawn(services.clone()),
        }))
    }

    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }
}

impl axum::extract::FromRef<AppState> for Metrics {
    fn from_ref(state: &AppState) -> Metrics {
        state.metrics.clone()
    }
}
