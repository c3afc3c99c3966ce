//! Who may do what: tenants, users, API keys, sessions and the first admin.
pub mod api_keys;
pub mod bootstrap;
pub mod login_throttle;
pub mod passwords;
pub mod sessions;
pub mod tenancy;
pub mod tenant_settings;
pub mod tenants;
pub mod users;
