//! Roles, credentials and their rules.

use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ValidationErrors;

/// `admin` sees every tenant; `user` sees only its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    User,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Role::Admin),
            "user" => Some(Role::User),
            _ => None,
        }
    }
}

impl TryFrom<String> for Role {
    type Error = crate::names::UnknownName;

    /// A stored role.
    fn try_from(s: String) -> Result<Self, crate::names::UnknownName> {
        Self::parse(&s).ok_or(crate::names::UnknownName {
            of: "role",
            name: s,
        })
    }
}

/// Who did something, as the audit log records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    User,
    ApiKey,
    /// The command line, run by whoever holds the data directory.
    Cli,
    /// The server itself (bootstrap, scheduled jobs).
    System,
    /// An unauthenticated caller (a failed login, say).
    Anonymous,
}

crate::names::names!(ActorKind {
    User => "user",
    ApiKey => "api_key",
    Cli => "cli",
    System => "system",
    Anonymous => "anonymous",
});

/// Who acted, as the audit log and state histories record it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub kind: ActorKind,
    /// The user's or API key's id.
    pub id: Option<String>,
    /// An e-mail, key name, or what the system was doing.
    pub label: Option<String>,
}

impl Actor {
    /// Someone not (yet) known: a login before it succeeds, a refresh token presented.
    pub fn anonymous() -> Self {
        Self {
            kind: ActorKind::Anonymous,
            id: None,
            label: None,
        }
    }

    /// The server acting on its own (scheduled jobs, automatic safety rules).
    pub fn system(what: &str) -> Self {
        Self {
            kind: ActorKind::System,
            id: None,
            label: Some(what.to_owned()),
        }
    }
}

/// The minimum password length for accounts.
pub const MIN_PASSWORD_LEN: usize = 10;

pub fn validate_password(password: &str, field: &str, errors: &mut ValidationErrors) {
    if password.chars().count() < MIN_PASSWORD_LEN {
        errors.add(
            field,
            format!("must be at least {MIN_PASSWORD_LEN} characters long"),
        );
    } else if password.len() > 1024 {
        errors.add(field, "must be at most 1024 bytes long");
    }
}

/// Random URL-safe text with `bytes` bytes of entropy.
pub fn random_token(bytes: usize) -> String {
    use base64::Engine as _;
    let mut buf = vec![0u8; bytes];
    rand::rng().fill(&mut buf[..]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// A readable password for a generated first admin: 24 characters, ~140 bits.
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..24)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Secrets with 256 bits of entropy (API keys, refresh tokens) are stored as their
/// SHA-256: a slow hash adds nothing against a search of that size and would cost
/// every request an argon2 run.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compares two secrets without a timing that depends on where they differ: the
/// SHA-256 of each is compared, every byte of it.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (x, y) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    x.iter()
        .zip(y.iter())
        .fold(0u8, |acc, (p, q)| acc | (p ^ q))
        == 0
}

/// Prefix of every API key, so that leaked keys are easy to find by secret scanners.
pub const API_KEY_PREFIX: &str = "ee_";

/// A new API key: the full secret (shown once) and the short prefix kept for display.
pub fn generate_api_key() -> (String, String) {
    let key = format!("{API_KEY_PREFIX}{}", random_token(32));
    let display_prefix = key[..API_KEY_PREFIX.len() + 6].to_owned();
    (key, display_prefix)
}

#[cfg(test)]
mod tests {
    #[test]
    fn constant_time_eq_tells_equal_from_different() {
        assert!(super::constant_time_eq("token-1", "token-1"));
        assert!(!super::constant_time_eq("token-1", "token-2"));
        assert!(!super::constant_time_eq("token-1", "token-"));
        assert!(!super::constant_time_eq("", "x"));
    }

    use super::*;

    #[test]
    fn roles_round_trip() {
        for role in [Role::Admin, Role::User] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn api_keys_are_random_and_prefixed() {
        let (a, prefix) = generate_api_key();
        let (b, _) = generate_api_key();
        assert_ne!(a, b);
        assert!(a.starts_with("ee_") && a.starts_with(&prefix));
        assert_eq!(a.len(), 3 + 43);
        assert_ne!(token_digest(&a), token_digest(&b));
        assert_eq!(token_digest(&a), token_digest(&a));
    }

    #[test]
    fn passwords() {
        let generated = generate_password();
        assert_eq!(generated.len(), 24);
        let mut errors = ValidationErrors::new();
        validate_password(&generated, "password", &mut errors);
        validate_password("short", "other", &mut errors);
        assert_eq!(errors.0.len(), 1);
        assert_eq!(errors.0[0].field, "other");
    }
}
