//! First-run set-up: the first admin account.

use ee_core::auth::generate_password;
use ee_store::{Db, users};

use crate::access::passwords;
use crate::audit::{Actor, Caller, Change};

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error(transparent)]
    Store(#[from] ee_store::StoreError),
    #[error("{0}")]
    Invalid(String),
    /// The first admin's audit entry could not be written.
    #[error(transparent)]
    Write(#[from] crate::AppError),
}

/// What `ensure_admin` did.
#[derive(Debug, PartialEq, Eq)]
pub enum AdminBootstrap {
    /// Accounts exist already: nothing done.
    Existing,
    /// Created with the password from the configuration.
    Created { email: String },
    /// Created with a generated password, to be shown once.
    Generated { email: String, password: String },
}

/// Creates the first admin when the database has no account yet.
pub async fn ensure_admin(
    db: &Db,
    email: &str,
    password: Option<&str>,
    now: i64,
) -> Result<AdminBootstrap, BootstrapError> {
    let mut tx = db.begin().await?;
    if users::count(&mut tx).await? > 0 {
        return Ok(AdminBootstrap::Existing);
    }
    let email = email.trim().to_lowercase();
    ee_core::address::check_syntax(&email)
        .map_err(|e| BootstrapError::Invalid(format!("EE_ADMIN_EMAIL {e}")))?;
    let (password, generated) = match password {
        Some(p) => (p.to_owned(), false),
        None => (generate_password(), true),
    };
    let mut errors = ee_core::ValidationErrors::new();
    ee_core::auth::validate_password(&password, "EE_ADMIN_PASSWORD", &mut errors);
    errors
        .into_result()
        .map_err(|e| BootstrapError::Invalid(e.summary()))?;
    let hash = passwords::hash_blocking(password.clone())
        .await
        .map_err(BootstrapError::Invalid)?;
    let user = users::insert(
        &mut tx,
        users::NewUser {
            tenant_id: None,
            email: &email,
            username: Some("admin"),
            password_hash: &hash,
            role: ee_core::auth::Role::Admin,
        },
        now,
    )
    .await?;
    let caller = Caller {
        actor: Actor::system("first run"),
        origin: Default::default(),
    };
    let change = Change {
        action: "user.create",
        resource_type: "user",
        resource_id: Some(&user.id),
        tenant_id: None,
        before: None,
        after: Some(serde_json::json!({"email": email, "role": "admin"})),
    };
    crate::write::Write::within(tx, caller, None, now)
        .commit(change)
        .await?;
    Ok(if generated {
        AdminBootstrap::Generated { email, password }
    } else {
        AdminBootstrap::Created { email }
    })
}
