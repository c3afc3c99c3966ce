//! The credential a request presents: an `X-API-KEY` or an `Authorization: Bearer` token.

use axum::http::HeaderMap;

use crate::error::ApiError;

/// The credential a request presents, if any. Two credentials at once (an `X-API-KEY`
/// and an `Authorization` header) are refused: which one wins would be a guess, and a
/// client sending both has a bug it should hear about.
pub fn presented_credential(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let key = headers.get("x-api-key");
    let authorization = headers.get("authorization");
    if key.is_some() && authorization.is_some() {
        return Err(ApiError::bad_request(
            "send one credential: Authorization or X-API-KEY, not both",
        ));
    }
    if let Some(key) = key {
        return Ok(key.to_str().ok().map(|k| k.trim().to_owned()));
    }
    Ok(bearer(headers).map(str::to_owned))
}

/// The token of an `Authorization: Bearer …` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let auth = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = auth.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}
