//! Sign-in sessions: opened by a login, carried on by refresh-token rotation (each refresh
//! token works once; a used one presented again ends its session, for it has leaked), and
//! closed by a logout, each audited in its transaction. The HTTP door, the only one with
//! sessions, checks the password and issues the access token (a JWT) for the session.

use ee_core::auth::{Actor, ActorKind, random_token, token_digest};
use ee_store::sessions::{self, RefreshOutcome};
use ee_store::users::{self, User};
use ee_store::{AnyConnection, StoreError};

use crate::AppError;
use crate::access::login_throttle::{self, Keys};
use crate::access::{Credential, tenant_active};
use crate::audit::Change;
use crate::read::Read;
use crate::write::Write;

/// A session and the refresh token that carries it on (shown once, stored hashed).
pub struct Opened {
    pub session_id: String,
    pub user_id: String,
    pub refresh_token: String,
}

fn actor_of(user: &User) -> Actor {
    Actor {
        kind: ActorKind::User,
        id: Some(user.id.clone()),
        label: Some(user.email.clone()),
    }
}

async fn new_refresh_token(
    conn: &mut AnyConnection,
    session_id: &str,
    session_expires_at: i64,
    now: i64,
) -> Result<String, StoreError> {
    let token = random_token(32);
    sessions::add_refresh_token(
        conn,
        session_id,
        &token_digest(&token),
        session_expires_at,
        now,
    )
    .await?;
    Ok(token)
}

async fn record(
    w: &mut Write,
    action: &str,
    session_id: Option<&str>,
    tenant_id: Option<&str>,
    after: Option<serde_json::Value>,
) -> Result<(), AppError> {
    w.record(Change {
        action,
        resource_type: "session",
        resource_id: session_id,
        tenant_id,
        before: None,
        after,
    })
    .await
}

/// Opens a session of `ttl_ms` for a user whose password the door checked; the user
/// becomes the scope's actor.
pub async fn open(
    w: &mut Write,
    user: &User,
    ttl_ms: i64,
    client_ip: Option<&str>,
    user_agent: Option<&str>,
) -> Result<Opened, AppError> {
    let now = w.now;
    let session = sessions::create(
        &mut w.tx,
        &user.id,
        now + ttl_ms,
        client_ip,
        user_agent,
        now,
    )
    .await?;
    let refresh_token = new_refresh_token(&mut w.tx, &session.id, session.expires_at, now).await?;
    w.act_as(actor_of(user));
    record(
        w,
        "auth.login",
        Some(&session.id),
        user.tenant_id.as_deref(),
        None,
    )
    .await?;
    Ok(Opened {
        session_id: session.id,
        user_id: user.id.clone(),
        refresh_token,
    })
}

/// What a login whose password the door checked came to.
pub enum Login {
    Opened(Opened),
    /// The account's tenant is disabled: nothing is opened (roll back, then refuse).
    TenantDisabled,
}

/// Opens a session for a login whose password the door checked: the account's failed
/// logins are forgotten and its tenant must be active.
pub async fn login(
    w: &mut Write,
    keys: &Keys,
    user: &User,
    ttl_ms: i64,
    client_ip: Option<&str>,
    user_agent: Option<&str>,
) -> Result<Login, AppError> {
    login_throttle::succeeded(w, keys).await?;
    if let Some(tenant_id) = &user.tenant_id
        && !tenant_active(&mut w.tx, tenant_id).await?
    {
        return Ok(Login::TenantDisabled);
    }
    Ok(Login::Opened(
        open(w, user, ttl_ms, client_ip, user_agent).await?,
    ))
}

/// The account of a session's access token (its session id and user, as the token's
/// signature vouches for them), if the session is live, the account active and its
/// tenant too.
pub async fn authenticate(
    read: &mut Read,
    session_id: &str,
    user_id: &str,
    now: i64,
) -> Result<Credential<User>, AppError> {
    let conn = read.conn();
    match sessions::get_live(conn, session_id, now).await {
        Ok(session) if session.user_id == user_id => {}
        Ok(_) | Err(StoreError::NotFound) => return Ok(Credential::Refused),
        Err(e) => return Err(e.into()),
    }
    let user = match users::get(conn, user_id).await {
        Ok(user) if user.is_active => user,
        Ok(_) | Err(StoreError::NotFound) => return Ok(Credential::Refused),
        Err(e) => return Err(e.into()),
    };
    if let Some(tenant_id) = &user.tenant_id
        && !tenant_active(conn, tenant_id).await?
    {
        return Ok(Credential::TenantDisabled);
    }
    Ok(Credential::Valid(user))
}

/// What presenting a refresh token came to.
pub enum Refreshed {
    /// A new refresh token for the same session.
    Rotated(Opened),
    /// The token was used before: its session is ended (audited; commit, then refuse).
    Reused,
    /// Unknown or expired.
    Invalid,
    /// The account was disabled since.
    Disabled,
}

/// Spends a refresh token for a new one.
pub async fn refresh(w: &mut Write, token: &str) -> Result<Refreshed, AppError> {
    let now = w.now;
    let digest = token_digest(token);
    let (session_id, user_id) = match sessions::use_refresh_token(&mut w.tx, &digest, now).await? {
        RefreshOutcome::Rotated {
            session_id,
            user_id,
        } => (session_id, user_id),
        RefreshOutcome::Reused => {
            let session = sessions::session_of_refresh_token(&mut w.tx, &digest).await?;
            let revoked = Some(serde_json::json!({"revoked": true}));
            record(w, "auth.refresh_reused", session.as_deref(), None, revoked).await?;
            return Ok(Refreshed::Reused);
        }
        RefreshOutcome::Invalid => return Ok(Refreshed::Invalid),
    };
    let user = users::get(&mut w.tx, &user_id).await?;
    if !user.is_active {
        return Ok(Refreshed::Disabled);
    }
    let session = sessions::get_live(&mut w.tx, &session_id, now).await?;
    let refresh_token = new_refresh_token(&mut w.tx, &session_id, session.expires_at, now).await?;
    w.act_as(actor_of(&user));
    record(
        w,
        "auth.refresh",
        Some(&session_id),
        user.tenant_id.as_deref(),
        None,
    )
    .await?;
    Ok(Refreshed::Rotated(Opened {
        session_id,
        user_id,
        refresh_token,
    }))
}

/// The session a refresh token belongs to, if any.
pub async fn of_refresh_token(w: &mut Write, token: &str) -> Result<Option<String>, AppError> {
    Ok(sessions::session_of_refresh_token(&mut w.tx, &token_digest(token)).await?)
}

/// Ends a session, on behalf of `actor`.
pub async fn close(w: &mut Write, session_id: &str, actor: Actor) -> Result<(), AppError> {
    sessions::revoke(&mut w.tx, session_id, w.now).await?;
    w.act_as(actor);
    record(w, "auth.logout", Some(session_id), None, None).await
}
