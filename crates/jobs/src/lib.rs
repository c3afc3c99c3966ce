//! Workers, the scheduler and the operations they run over the durable job queue.

pub mod alerts;
pub mod blacklists;
pub mod contacts;
pub mod csv_import;
pub mod delivery;
mod handlers;
pub mod infra;
pub mod mailwizz;
pub mod powermta;
pub mod scheduler;
pub mod snapshot;
mod worker;

pub use handlers::{JobError, Registry, Services, standard_registry};
pub use worker::{Worker, WorkerConfig};
