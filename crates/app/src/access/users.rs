//! Accounts: administrators (every tenant) and tenants' users.

use ee_core::ValidationErrors;
use ee_core::address::check_syntax;
use ee_core::auth::{Role, validate_password};
use ee_core::timefmt::to_rfc3339;
pub use ee_store::users::User;
use ee_store::users::{self, NewUser};
use ee_store::{AnyConnection, StoreError, sessions, tenants};
use serde::Serialize;
use utoipa::ToSchema;

use crate::audit::Change;
use crate::read::{Read, Reader};
use crate::write::Write;
use crate::{AppError, access::passwords};

/// An account as the API answers it and the audit log records it (no password hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserOut {
    pub id: String,
    pub email: String,
    pub username: Option<String>,
    pub role: Role,
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
            is_active: u.is_active,
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
    role: Option<Role>,
    tenant: Option<&str>,
    errors: &mut ValidationErrors,
) -> Result<Option<String>, StoreError> {
    match (role, tenant) {
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

/// A new password, checked and hashed before any transaction opens: argon2 is slow on
/// purpose, and SQLite's write lock would be held meanwhile.
#[derive(Debug)]
pub struct NewPassword {
    hash: String,
}

impl NewPassword {
    /// Checks `password` (422 naming `field`) and hashes it.
    pub async fn of(password: String, field: &str) -> Result<Self, AppError> {
        let mut errors = ValidationErrors::new();
        validate_password(&password, field, &mut errors);
        errors.into_result()?;
        Ok(Self {
            hash: hash_password(password).await?,
        })
    }
}

/// A new account's input with its address and password checked and the password hashed,
/// before the write opens: argon2 is slow on purpose, and SQLite's write lock would be
/// held meanwhile. What is wrong so far is kept, to be answered with what the write finds
/// (the role and the tenant), in one 422.
#[derive(Debug)]
pub struct CheckedUser {
    input: NewUserInput,
    email: String,
    hash: String,
    errors: ValidationErrors,
}

impl NewUserInput {
    /// Checks the address and the password, and hashes the password if both are good.
    pub async fn check(mut self) -> Result<CheckedUser, AppError> {
        let email = self.email.trim().to_lowercase();
        let mut errors = ValidationErrors::new();
        if let Err(e) = check_syntax(&email) {
            errors.add("email", e.to_string());
        }
        validate_password(&self.password, "password", &mut errors);
        let hash = if errors.is_empty() {
            hash_password(std::mem::take(&mut self.password)).await?
        } else {
            String::new()
        };
        self.password.clear();
        Ok(CheckedUser {
            input: self,
            email,
            hash,
            errors,
        })
    }
}

/// Creates an account.
pub async fn create(w: &mut Write, user: CheckedUser) -> Result<UserOut, AppError> {
    let CheckedUser {
        input,
        email,
        hash,
        mut errors,
    } = user;
    let role = Role::parse(&input.role);
    let tenant_id =
        check_role_and_tenant(&mut w.tx, role, input.tenant.as_deref(), &mut errors).await?;
    errors.into_result()?;
    let role = role.ok_or_else(unknown_role)?;
    let user = users::insert(
        &mut w.tx,
        NewUser {
            tenant_id: tenant_id.as_deref(),
            email: &email,
            username: input.username.as_deref(),
            password_hash: &hash,
            role,
        },
        w.now,
    )
    .await?;
    let out = UserOut::from(user);
    w.created("user.create", &out).await?;
    Ok(out)
}

crate::write::audited!(UserOut, "user", optional);

/// What an account change may set; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct UserChanges {
    pub email: Option<String>,
    /// Checked and hashed before the change's transaction opens.
    pub password: Option<NewPassword>,
    pub role: Option<String>,
    /// The tenant's id, or its slug.
    pub tenant: Option<String>,
    pub username: Option<String>,
    pub is_active: Option<bool>,
}

/// An account by id (accounts belong to no tenant's scope: only administrators reach them).
pub async fn find(r: &mut impl Reader, id: &str) -> Result<User, AppError> {
    users::get(r.connection(), id)
        .await
        .map_err(AppError::from_store("user"))
}

/// Whether a stored role is `Role::Admin`.
/// The 422 of a role that is neither `admin` nor `user`.
fn unknown_role() -> AppError {
    let mut errors = ValidationErrors::new();
    errors.add("role", "must be admin or user");
    AppError::Invalid(errors)
}

/// Counts active admins other than `except`.
async fn other_active_admins(conn: &mut AnyConnection, except: &str) -> Result<i64, AppError> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM users WHERE role = 'admin' AND is_active = 1 AND id <> $1",
    )
    .bind(except)
    .fetch_one(conn)
    .await
    .map_err(StoreError::from)?)
}

const LAST_ADMIN: &str = "this is the last active admin; make another admin first";

/// Changes an account. The last active admin cannot stop being one; a new password or a
/// deactivation ends the account's sessions. The audit entry says a password changed,
/// never what it is.
pub async fn update(w: &mut Write, id: &str, changes: UserChanges) -> Result<UserOut, AppError> {
    let mut user = find(w, id).await?;
    let before = UserOut::from(user.clone());
    let mut errors = ValidationErrors::new();
    if let Some(email) = &changes.email {
        let email = email.trim().to_lowercase();
        match check_syntax(&email) {
            Ok(()) => user.email = email,
            Err(e) => errors.add("email", e.to_string()),
        }
    }
    let mut role = Some(user.role);
    if let Some(text) = &changes.role {
        role = Role::parse(text);
        if role == Some(Role::Admin) {
            user.tenant_id = None;
        }
    }
    if changes.tenant.is_some() {
        user.tenant_id = changes.tenant.clone();
    }
    let tenant_id =
        check_role_and_tenant(&mut w.tx, role, user.tenant_id.as_deref(), &mut errors).await?;
    errors.into_result()?;
    user.role = role.ok_or_else(unknown_role)?;
    user.tenant_id = tenant_id;
    if let Some(username) = changes.username {
        user.username = Some(username);
    }
    if let Some(active) = changes.is_active {
        user.is_active = active;
    }
    let was_active_admin = before.role == Role::Admin && before.is_active;
    let still_active_admin = user.role == Role::Admin && user.is_active;
    if was_active_admin
        && !still_active_admin
        && other_active_admins(&mut w.tx, &user.id).await? == 0
    {
        return Err(AppError::Conflict(LAST_ADMIN.into()));
    }
    let password_changed = changes.password.is_some();
    if let Some(password) = changes.password {
        user.password_hash = password.hash;
    }
    user.updated_at = w.now;
    users::update(&mut w.tx, &user).await?;
    if password_changed || !user.is_active {
        sessions::revoke_all_for_user(&mut w.tx, &user.id, w.now).await?;
    }
    let out = UserOut::from(user);
    let mut after = serde_json::to_value(&out).ok();
    if let (Some(after), true) = (after.as_mut(), password_changed) {
        after["password"] = serde_json::Value::String("changed".into());
    }
    w.record(Change {
        action: "user.update",
        resource_type: "user",
        resource_id: Some(&out.id),
        tenant_id: out.tenant_id.as_deref(),
        before: serde_json::to_value(&before).ok(),
        after,
    })
    .await?;
    Ok(out)
}

/// Deletes an account; `by` (the caller's own account) and the last active admin cannot be.
pub async fn delete(w: &mut Write, id: &str, by: &str) -> Result<(), AppError> {
    if by == id {
        return Err(AppError::Conflict(
            "you cannot delete your own account".into(),
        ));
    }
    let user = find(w, id).await?;
    if user.role == Role::Admin && other_active_admins(&mut w.tx, &user.id).await? == 0 {
        return Err(AppError::Conflict(LAST_ADMIN.into()));
    }
    users::delete(&mut w.tx, id).await?;
    w.removed("user.delete", &UserOut::from(user)).await
}

/// Accounts (of one tenant, or all): a page of `limit` from `offset`.
pub async fn list(
    read: &mut Read,
    tenant_id: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<User>, AppError> {
    Ok(users::list(read.conn(), tenant_id, limit, offset).await?)
}

/// The account an address signs in with, if any (the login's look-up).
pub async fn by_email(read: &mut Read, email: &str) -> Result<Option<User>, AppError> {
    match users::get_by_email(read.conn(), email).await {
        Ok(user) => Ok(Some(user)),
        Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
