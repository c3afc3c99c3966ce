//! Access tokens: short-lived HS256 JWTs naming the user and the login session.
//! The session is checked on every request, so logout and deactivation take effect
//! at once rather than when the token expires.

use hmac::{Hmac, KeyInit, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

const ISSUER: &str = "email-engine";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    /// User id.
    pub sub: String,
    /// Session id.
    pub sid: String,
    pub iss: String,
    /// Issued at, epoch seconds.
    pub iat: i64,
    /// Expiry, epoch seconds.
    pub exp: i64,
}

#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// Derives the CSRF token of a cookie session (see `csrf_token`).
    csrf_key: Vec<u8>,
}

impl JwtKeys {
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            csrf_key: hmac_sha256(secret, b"email-engine csrf v1").to_vec(),
        }
    }

    /// The CSRF token of a login session: an HMAC of its id under a key derived from the
    /// JWT secret, so nothing is stored and it lives exactly as long as the session.
    pub fn csrf_token(&self, session_id: &str) -> String {
        hex::encode(hmac_sha256(&self.csrf_key, session_id.as_bytes()))
    }

    /// Whether `presented` is the CSRF token of `session_id` (compared in constant time).
    pub fn csrf_matches(&self, session_id: &str, presented: &str) -> bool {
        let Ok(bytes) = hex::decode(presented.trim()) else {
            return false;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.csrf_key).expect("any key length");
        mac.update(session_id.as_bytes());
        mac.verify_slice(&bytes).is_ok()
    }

    pub fn issue(&self, user_id: &str, session_id: &str, now_ms: i64, ttl_secs: i64) -> String {
        let iat = now_ms / 1000;
        let claims = AccessClaims {
            sub: user_id.to_owned(),
            sid: session_id.to_owned(),
            iss: ISSUER.to_owned(),
            iat,
            exp: iat + ttl_secs,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing with an in-memory key cannot fail")
    }

    /// The claims of a well-signed, unexpired token.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, String> {
        jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| e.to_string())
    }
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now_ms() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    }

    #[test]
    fn issues_and_verifies() {
        let keys = JwtKeys::new(b"0123456789abcdef0123456789abcdef");
        let token = keys.issue("u1", "s1", now_ms(), 60);
        let claims = keys.verify(&token).unwrap();
        assert_eq!((claims.sub.as_str(), claims.sid.as_str()), ("u1", "s1"));
    }

    #[test]
    fn refuses_expired_tampered_and_foreign_tokens() {
        let keys = JwtKeys::new(b"0123456789abcdef0123456789abcdef");
        let expired = keys.issue("u1", "s1", now_ms() - 3_600_000, 60);
        assert!(keys.verify(&expired).is_err());
        let token = keys.issue("u1", "s1", now_ms(), 60);
        let mut tampered = token.clone();
        tampered.insert(token.len() - 3, 'x');
        assert!(keys.verify(&tampered).is_err());
        let other =
            JwtKeys::new(b"another key of thirty-two bytes!").issue("u1", "s1", now_ms(), 60);
        assert!(keys.verify(&other).is_err());
    }

    #[test]
    fn csrf_tokens_belong_to_one_session_and_one_secret() {
        let keys = JwtKeys::new(b"0123456789abcdef0123456789abcdef");
        let token = keys.csrf_token("s1");
        assert!(keys.csrf_matches("s1", &token));
        assert!(!keys.csrf_matches("s2", &token));
        assert!(!keys.csrf_matches("s1", ""));
        assert!(!keys.csrf_matches("s1", "not hex"));
        let other = JwtKeys::new(b"another key of thirty-two bytes!");
        assert!(!other.csrf_matches("s1", &token));
    }
}
