use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use ee_core::clock::Clock;
use ee_store::{Db, Job};

/// Why a job attempt failed; the text is kept on the job as `last_error`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct JobError(pub String);

impl From<ee_store::StoreError> for JobError {
    fn from(e: ee_store::StoreError) -> Self {
        JobError(e.to_string())
    }
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<(), JobError>> + Send>>;
type HandlerFn = Arc<dyn Fn(Job) -> BoxFuture + Send + Sync>;

/// The job kinds this node knows how to run.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<String, HandlerFn>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register<F, Fut>(&mut self, kind: &str, handler: F) -> &mut Self
    where
        F: Fn(Job) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), JobError>> + Send + 'static,
    {
        self.handlers
            .insert(kind.to_owned(), Arc::new(move |job| Box::pin(handler(job))));
        self
    }

    pub(crate) fn get(&self, kind: &str) -> Option<HandlerFn> {
        self.handlers.get(kind).cloned()
    }

    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        self.handlers.keys().map(String::as_str)
    }
}

/// Kind of the housekeeping job: removes login sessions that ended a week ago.
pub const PURGE_SESSIONS: &str = "maintenance.purge_sessions";

/// The handlers every node runs.
pub fn standard_registry(db: Db, clock: Clock) -> Registry {
    let mut registry = Registry::new();
    registry.register(PURGE_SESSIONS, move |_job| {
        let db = db.clone();
        let clock = clock.clone();
        async move {
            let mut conn = db
                .pool()
                .acquire()
                .await
                .map_err(|e| JobError(e.to_string()))?;
            let removed =
                ee_store::sessions::purge_ended(&mut conn, clock.now_ms(), 7 * 86_400_000).await?;
            tracing::info!(removed, "purged ended sessions");
            Ok(())
        }
    });
    registry
}
