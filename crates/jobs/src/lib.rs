//! The worker and the scheduler over the durable job queue, and the delivery engine.

pub mod accounting;
pub mod bounce_listener;
pub mod campaigns;
pub mod delivery;
mod handlers;
pub mod scheduler;
mod worker;

pub use ee_app::JobError;
pub use ee_app::Services;
pub use handlers::{Registry, standard_registry};
pub use worker::{Worker, WorkerConfig};
