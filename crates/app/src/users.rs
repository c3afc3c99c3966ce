//! Accounts: administrators (every tenant) and tenants' users.

use ee_core::ValidationErrors;
use ee_core::address::check_syntax;
use ee_core::auth::{Role, validate_password};
use ee_core::timefmt::to_rfc3339;
use ee_store::users::{self, NewUser, User};
use ee_store::{AnyConnection, Db, StoreError, tenants};
use serde::Serialize;
use utoipa::ToSchema;

use crate::audit::{self, Caller, Change};
use crate::{AppError, passwords};

/// An account as the API answers it and the audit log records it (no password hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserOut {
    pub id: String,
    pub email: String,
    pub username: Option<String>,
    /// `admin` or `user`.
    pub role: String,
    pub tenant_id: Option<String>,
    pub is_active: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl From<User> for UserOut {
    fn from(u: User) -> Self {
        Self {
            id: u.id,
            email: u.email,
            username: u.username,
            role: u.role,
            tenant_id: u.tenant_id,
            is_active: u.is_active == 1,
            created_at: to_rfc3339(u.created_at),
            updated_at: to_rfc3339(u.updated_at),
        }
    }
}

/// What a new account is made of.
#[derive(Debug, Clone)]
pub struct NewUserInput {
    pub email: String,
    pub password: String,
    pub role: String,
    /// The tenant's id, or its slug.
    pub tenant: Option<String>,
    pub username: Option<String>,
}

/// Checks the role/tenant pair; the tenant (by id or slug) must exist. Returns its id.
pub async fn check_role_and_tenant(
    conn: &mut AnyConnection,
    role: &str,
    tenant: Option<&str>,
    errors: &mut ValidationErrors,
) -> Result<Option<String>, StoreError> {
    match (Role::parse(role), tenant) {
        (None, _) => errors.add("role", "must be admin or user"),
        (Some(Role::Admin), Some(_)) => errors.add(
            "tenant_id",
            "must be absent for an admin (admins see all tenants)",
        ),
        (Some(Role::User), None) => errors.add("tenant_id", "is required for a user"),
        (Some(Role::User), Some(key)) => match tenants::get_by_slug_or_id(conn, key).await {
            Ok(t) => return Ok(Some(t.id)),
            Err(StoreError::NotFound) => errors.add("tenant_id", "names no tenant"),
            Err(e) => return Err(e),
        },
        (Some(Role::Admin), None) => {}
    }
    Ok(None)
}

/// Hashes a password off the async threads; a failure (only a bug could cause one) is
/// internal.
pub async fn hash_password(password: String) -> Result<String, AppError> {
    passwords::hash_blocking(password).await.map_err(|e| {
        tracing::error!(error = %e, "password hashing failed");
        AppError::Internal("password hashing failed".into())
    })
}

/// Creates an account, audited in the same transaction.
pub async fn create(
    db: &Db,
    caller: &Caller,
    input: NewUserInput,
    now: i64,
) -> Result<UserOut, AppError> {
    let email = input.email.trim().to_lowercase();
    let mut errors = ValidationErrors::new();
    if let Err(e) = check_syntax(&email) {
        errors.add("email", e.to_string());
    }
    validate_password(&input.password, "password", &mut errors);
    let mut tx = db.begin().await?;
    let tenant_id =
        check_role_and_tenant(&mut tx, &input.role, input.tenant.as_deref(), &mut errors).await?;
    errors.into_result()?;
    let hash = hash_password(input.password).await?;
    let user = users::insert(
        &mut tx,
        NewUser {
            tenant_id: tenant_id.as_deref(),
            email: &email,
            username: input.username.as_deref(),
            password_hash: &hash,
            role: &input.role,
        },
        now,
    )
    .await?;
    let out = UserOut::from(user);
    let change = Change {
        action: "user.create",
        resource_type: "user",
        resource_id: Some(&out.id),
        tenant_id: out.tenant_id.as_deref(),
        before: None,
        after: serde_json::to_value(&out).ok(),
    };
    audit::record(&mut tx, caller, change, now).await?;
    tx.commit().await?;
    Ok(out)
}
