//! Authentication: passwords, access tokens, and the caller's identity.

pub use ee_app::access::passwords;
pub mod cookie;
pub mod credentials;
pub mod principal;
pub mod throttle;
pub mod tokens;

pub use principal::Principal;
