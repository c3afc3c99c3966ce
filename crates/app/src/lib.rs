//! The use-cases: one function per operation that the API, the CLI and the workers
//! perform, over the store and the protocol crates, and the services they need, built
//! once from the configuration.

pub mod access;
pub mod audit;
pub mod campaigns;
pub mod contacts;
pub mod delivery;
mod error;
pub mod feedback;
pub mod infra;
mod input;
mod owned;
pub mod queue;
pub mod read;
pub mod schedule;
mod services;
pub mod sources;
pub mod write;

/// The database, its backend, and "all tenants or this one", as the doors name them.
pub use ee_store::{Backend, Db, Scope};
pub use error::{AppError, StoreFailure};
pub use services::{JobError, Services};
