//! The admin UI's login session: an HttpOnly, SameSite=Strict cookie holding an access
//! token of the session, and a CSRF token every state-changing request sends back in the
//! `X-CSRF-Token` header (the cookie alone never authorises a change).

use axum::http::{HeaderMap, HeaderValue, header};

pub const SESSION_COOKIE: &str = "ee_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a UI session's cookie lasts (the session itself may end sooner: logout,
/// a disabled account, the refresh lifetime).
pub const UI_SESSION_SECS: i64 = 12 * 3600;

/// The session cookie's token, if the request carries one.
pub fn session_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

/// Whether the client reached us over TLS: the public URL is https, or the reverse proxy
/// in front says so.
pub fn over_tls(headers: &HeaderMap, public_url: &str) -> bool {
    public_url.starts_with("https://")
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|proto| proto.eq_ignore_ascii_case("https"))
}

/// `Set-Cookie` for a new session (`token` is a JWT: base64url and dots only).
pub fn set(token: &str, max_age_secs: i64, secure: bool) -> HeaderValue {
    cookie(token, max_age_secs, secure)
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear(secure: bool) -> HeaderValue {
    cookie("", 0, secure)
}

fn cookie(value: &str, max_age_secs: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}"
    ))
    .expect("a JWT and these attributes are valid header characters")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_session_cookie_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            "a=1; ee_session=tok.en.x; b=2".parse().unwrap(),
        );
        assert_eq!(session_token(&headers), Some("tok.en.x"));
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, "other=1".parse().unwrap());
        headers.append(header::COOKIE, "ee_session=t2".parse().unwrap());
        assert_eq!(session_token(&headers), Some("t2"));
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            "ee_session=; x_ee_session=no".parse().unwrap(),
        );
        assert_eq!(session_token(&headers), None);
    }

    #[test]
    fn cookie_attributes() {
        let set = set("abc", 60, true);
        let set = set.to_str().unwrap();
        for part in [
            "ee_session=abc",
            "HttpOnly",
            "SameSite=Strict",
            "Max-Age=60",
            "Secure",
            "Path=/",
        ] {
            assert!(set.contains(part), "{set} lacks {part}");
        }
        assert!(!clear(false).to_str().unwrap().contains("Secure"));
        assert!(clear(false).to_str().unwrap().contains("Max-Age=0"));
    }

    #[test]
    fn tls_from_the_public_url_or_the_proxy() {
        let mut headers = HeaderMap::new();
        assert!(!over_tls(&headers, "http://x"));
        assert!(over_tls(&headers, "https://x"));
        headers.insert("x-forwarded-proto", "https".parse().unwrap());
        assert!(over_tls(&headers, "http://x"));
    }
}
