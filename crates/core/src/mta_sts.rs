//! MTA-STS (RFC 8461): the policy a receiving domain publishes at
//! `https://mta-sts.<domain>/.well-known/mta-sts.txt`, read with limits, and which MX
//! hosts it names. Written by hand: the policy is a few `key: value` lines, and no
//! maintained crate reads it (mail-auth reads the `_mta-sts` TXT record, not the policy).

use serde::Serialize;

/// The largest policy read (RFC 8461 §3.3 suggests 64 KiB).
pub const MAX_POLICY_BYTES: usize = 64 * 1024;
/// MX patterns a policy may name at most.
pub const MAX_MX: usize = 100;
/// The longest a policy is kept (RFC 8461 §3.2: max_age up to 31 557 600 s).
pub const MAX_AGE_SECS: u64 = 31_557_600;

/// What the receiving domain asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// TLS with a valid certificate to a host the policy names, or no delivery.
    Enforce,
    /// Deliver as usual; report what would have failed.
    Testing,
    /// No policy in force.
    None,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enforce => "enforce",
            Self::Testing => "testing",
            Self::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Enforce, Self::Testing, Self::None]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub mode: Mode,
    /// `mail.example.com` or `*.example.net` (one left-most label), lower case.
    pub mx: Vec<String>,
    pub max_age_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("the policy is over {MAX_POLICY_BYTES} bytes")]
    TooLarge,
    #[error("the policy is not UTF-8")]
    NotText,
    #[error("the policy's first field is not `version: STSv1`")]
    Version,
    #[error("the policy has no valid mode (enforce, testing or none)")]
    Mode,
    #[error("the policy has no valid max_age")]
    MaxAge,
    #[error("the policy names no MX host while its mode is {0}")]
    NoMx(&'static str),
    #[error("the policy names over {MAX_MX} MX hosts")]
    TooManyMx,
    #[error("the policy's mx {0:?} is not a host name pattern")]
    BadMx(String),
}

impl Policy {
    /// Reads a policy file (RFC 8461 §3.2): `key: value` lines ended by CRLF or LF;
    /// unknown keys are ignored, `mx` may repeat, the others must appear once.
    pub fn parse(bytes: &[u8]) -> Result<Self, PolicyError> {
        if bytes.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::TooLarge);
        }
        let text = std::str::from_utf8(bytes).map_err(|_| PolicyError::NotText)?;
        let mut version = None;
        let mut mode = None;
        let mut max_age = None;
        let mut mx = Vec::new();
        let mut first = true;
        for line in text.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() {
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                if first {
                    return Err(PolicyError::Version);
                }
                continue;
            };
            let (key, value) = (key.trim(), value.trim());
            if first && key != "version" {
                return Err(PolicyError::Version);
            }
            first = false;
            match key {
                "version" if version.is_none() => version = Some(value.to_owned()),
                "mode" if mode.is_none() => {
                    mode = Some(Mode::parse(value).ok_or(PolicyError::Mode)?)
                }
                "max_age" if max_age.is_none() => {
                    let secs = (value.len() <= 10
                        && !value.is_empty()
                        && value.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| value.parse::<u64>().ok())
                    .flatten()
                    .ok_or(PolicyError::MaxAge)?;
                    max_age = Some(secs.min(MAX_AGE_SECS));
                }
                "mx" => {
                    if mx.len() == MAX_MX {
                        return Err(PolicyError::TooManyMx);
                    }
                    mx.push(mx_pattern(value).ok_or_else(|| PolicyError::BadMx(value.to_owned()))?);
                }
                "version" => return Err(PolicyError::Version),
                "mode" => return Err(PolicyError::Mode),
                "max_age" => return Err(PolicyError::MaxAge),
                _ => {}
            }
        }
        if version.as_deref() != Some("STSv1") {
            return Err(PolicyError::Version);
        }
        let mode = mode.ok_or(PolicyError::Mode)?;
        let max_age_secs = max_age.ok_or(PolicyError::MaxAge)?;
        if mx.is_empty() && mode != Mode::None {
            return Err(PolicyError::NoMx(mode.as_str()));
        }
        Ok(Self {
            mode,
            mx,
            max_age_secs,
        })
    }

    /// The policy as lines (RFC 8460's `policy-string`), in the order RFC 8461 §3.2
    /// lists its fields.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![
            "version: STSv1".to_owned(),
            format!("mode: {}", self.mode.as_str()),
        ];
        lines.extend(self.mx.iter().map(|mx| format!("mx: {mx}")));
        lines.push(format!("max_age: {}", self.max_age_secs));
        lines
    }

    /// Whether an MX host is one the policy names (RFC 8461 §4.1: a wildcard stands for
    /// exactly one left-most label).
    pub fn names(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.mx
            .iter()
            .any(|pattern| match pattern.strip_prefix("*.") {
                Some(parent) => host
                    .split_once('.')
                    .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
                None => host == *pattern,
            })
    }
}

fn mx_pattern(value: &str) -> Option<String> {
    let value = value.trim_end_matches('.').to_ascii_lowercase();
    let (wild, name) = match value.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, value.as_str()),
    };
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    (name.len() <= 253 && name.contains('.') && name.split('.').all(label_ok)).then(|| {
        if wild {
            format!("*.{name}")
        } else {
            name.to_owned()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENFORCE: &str = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n";

    #[test]
    fn the_rfc_example_reads() {
        let p = Policy::parse(ENFORCE.as_bytes()).unwrap();
        assert_eq!(p.mode, Mode::Enforce);
        assert_eq!(p.max_age_secs, 604_800);
        assert_eq!(p.mx.len(), 3);
        assert!(p.names("mail.example.com."));
        assert!(p.names("MX1.Example.NET"));
        assert!(!p.names("a.b.example.net"), "one label only");
        assert!(!p.names("example.net"));
        assert!(!p.names("evil-mail.example.com"));
    }

    #[test]
    fn what_is_wrong_is_named() {
        for (text, error) in [
            (
                "mode: enforce\nversion: STSv1\nmx: a.b\nmax_age: 1\n",
                PolicyError::Version,
            ),
            (
                "version: STSv2\nmode: enforce\nmx: a.b\nmax_age: 1\n",
                PolicyError::Version,
            ),
            (
                "version: STSv1\nmode: strict\nmx: a.b\nmax_age: 1\n",
                PolicyError::Mode,
            ),
            (
                "version: STSv1\nmode: enforce\nmx: a.b\n",
                PolicyError::MaxAge,
            ),
            (
                "version: STSv1\nmode: enforce\nmx: a.b\nmax_age: -5\n",
                PolicyError::MaxAge,
            ),
            (
                "version: STSv1\nmode: enforce\nmax_age: 60\n",
                PolicyError::NoMx("enforce"),
            ),
            (
                "version: STSv1\nmode: testing\nmx: *.*.b\nmax_age: 60\n",
                PolicyError::BadMx("*.*.b".into()),
            ),
            (
                "version: STSv1\nmode: testing\nmode: enforce\nmx: a.b\nmax_age: 60\n",
                PolicyError::Mode,
            ),
        ] {
            assert_eq!(Policy::parse(text.as_bytes()), Err(error), "{text:?}");
        }
        // `none` needs no MX; unknown keys are ignored; a huge max_age is capped.
        let none =
            Policy::parse(b"version: STSv1\nmode: none\nmax_age: 9999999999\nextension: x\n")
                .unwrap();
        assert_eq!((none.mode, none.max_age_secs), (Mode::None, MAX_AGE_SECS));
        assert_eq!(
            Policy::parse(&vec![b'a'; MAX_POLICY_BYTES + 1]),
            Err(PolicyError::TooLarge)
        );
        let many = format!(
            "version: STSv1\nmode: testing\nmax_age: 60\n{}",
            "mx: a.example\n".repeat(MAX_MX + 1)
        );
        assert_eq!(Policy::parse(many.as_bytes()), Err(PolicyError::TooManyMx));
    }

    proptest::proptest! {
        /// Whatever a domain serves, reading it ends without a panic.
        #[test]
        fn any_bytes_are_read_or_refused(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = Policy::parse(&bytes);
        }

        #[test]
        fn any_policy_like_text_is_read_or_refused(text in "(version: STSv1|mode: (enforce|testing|none)|mx: [a-z*.]{0,12}|max_age: [0-9]{0,12}|[a-z]{0,5}: ?[a-z]{0,5}|\r?\n){0,12}") {
            if let Ok(p) = Policy::parse(text.as_bytes()) {
                assert!(p.mx.len() <= MAX_MX);
            }
        }
    }
}
