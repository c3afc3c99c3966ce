//! Failed-login throttling at the door (`ee_app::access::login_throttle` keeps the counts): a
//! locked caller hears 429 with Retry-After, whichever of its account or client stopped it.

use ee_app::access::login_throttle;
pub use ee_app::access::login_throttle::Keys;

use crate::audit::Actor;
use crate::error::{ApiError, ApiResult};
use crate::extract::RequestMeta;
use crate::read::{Read, Reading};
use crate::state::AppState;
use crate::write::{Begin, Write};

/// The counters of a login attempt from this request.
pub fn keys(email: &str, meta: &RequestMeta) -> Keys {
    Keys::new(email, meta.ip.as_deref())
}

fn locked(retry_after_ms: i64) -> ApiError {
    let mut error = ApiError::new(
        axum::http::StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "too many failed logins; try again later",
    );
    error.retry_after_secs = Some(
        u64::try_from(retry_after_ms)
            .unwrap_or(0)
            .div_ceil(1000)
            .max(1),
    );
    error
}

/// Refuses the attempt while its account or its client is locked.
pub async fn check(state: &AppState, keys: &Keys) -> ApiResult<()> {
    let mut read = Read::unscoped(state).await?;
    match login_throttle::locked_for(&mut read, keys, state.now()).await? {
        Some(ms) => Err(locked(ms)),
        None => Ok(()),
    }
}

/// Counts a failure (`ee_app::access::login_throttle::failed`) in its own transaction.
pub async fn failed(
    state: &AppState,
    keys: &Keys,
    email: &str,
    meta: &RequestMeta,
) -> ApiResult<()> {
    let mut w = Write::begin_for(state, Actor::anonymous(), meta, state.now()).await?;
    login_throttle::failed(&mut w, keys, email, meta.ip.as_deref()).await?;
    w.finish().await?;
    Ok(())
}
