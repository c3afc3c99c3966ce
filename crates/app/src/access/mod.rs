//! Who may do what: tenants, users, API keys, sessions and the first admin.
pub mod api_keys;
pub mod bootstrap;
pub mod login_throttle;
pub mod passwords;
pub mod rate_limits;
pub mod sessions;
pub mod tenancy;
pub mod tenant_settings;
pub mod tenants;
pub mod users;

/// What a presented credential (an API key, a session's access token) comes to once its
/// digest or signature is known.
pub enum Credential<T> {
    /// It may be used: the key, or the account of the session.
    Valid(T),
    /// Unknown, revoked or expired; a session that ended, an account disabled.
    Refused,
    /// The tenant it belongs to is disabled.
    TenantDisabled,
}

/// Whether a tenant may act: a missing one is the store's "not found".
async fn tenant_active(
    conn: &mut ee_store::AnyConnection,
    tenant_id: &str,
) -> Result<bool, crate::AppError> {
    Ok(ee_store::tenants::get(conn, tenant_id).await?.is_active)
}
