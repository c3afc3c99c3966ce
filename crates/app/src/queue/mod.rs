//! The durable message queue: transactional messages, their bodies and retries.
pub mod bodies;
pub mod messages;
pub mod retry;
