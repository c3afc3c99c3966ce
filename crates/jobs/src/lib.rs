//! Workers and (in later issues) the scheduler, over the durable job queue of `ee-store`.

mod handlers;
mod worker;

pub use handlers::{JobError, PURGE_SESSIONS, Registry, standard_registry};
pub use worker::{Worker, WorkerConfig};
