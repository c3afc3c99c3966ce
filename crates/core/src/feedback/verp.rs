//! Per-message return paths (VERP): `b-<message id>-<tag>@<bounce domain>`, where the tag
//! is a short HMAC of the id, so a bounce or a report sent to it names its message and a
//! forged one does not match.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

const PREFIX: &str = "b-";
/// Hex characters of the tag: 40 bits, enough that guessing one is hopeless per try.
const TAG_LEN: usize = 10;

fn tag(key: &[u8], message_id: &str) -> String {
    #[allow(clippy::expect_used)]
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(b"verp:");
    mac.update(message_id.as_bytes());
    let mut out = hex::encode(mac.finalize().into_bytes());
    out.truncate(TAG_LEN);
    out
}

/// The return path of a message.
pub fn return_path(key: &[u8], message_id: &str, bounce_domain: &str) -> String {
    format!(
        "{PREFIX}{message_id}-{}@{bounce_domain}",
        tag(key, message_id)
    )
}

/// The message id a return path names, when its tag is right.
pub fn message_of(key: &[u8], address: &str) -> Option<String> {
    let address = address.trim().trim_matches(['<', '>']);
    let (local, _) = address.rsplit_once('@')?;
    let rest = local.strip_prefix(PREFIX).or_else(|| {
        // Some servers upper-case the local part of what they bounce to.
        local.strip_prefix("B-")
    })?;
    let (id, given) = rest.rsplit_once('-')?;
    let id = id.to_ascii_lowercase();
    let expected = tag(key, &id);
    // Constant time is not needed for a 40-bit tag checked once per bounce, but costs
    // nothing.
    let same = expected.len() == given.len()
        && expected
            .bytes()
            .zip(given.to_ascii_lowercase().bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    same.then_some(id)
}

/// The reference header every message carries (`X-EE-Ref: <id>-<tag>`): reports that
/// quote the original (abuse reports, bounces with the headers) name the message by it
/// even when they were not sent to its return path.
pub fn reference(key: &[u8], message_id: &str) -> String {
    format!("{message_id}-{}", tag(key, message_id))
}

/// The message id a reference header names, when its tag is right.
pub fn message_of_reference(key: &[u8], value: &str) -> Option<String> {
    let value = value.trim().trim_matches(['<', '>']);
    if value.len() > 128 {
        return None;
    }
    message_of(key, &format!("{PREFIX}{value}@reference"))
}

/// Our message id from a Message-ID we wrote (`<id@domain>`), unchecked: the message it
/// names must still be found, to the same recipient.
pub fn message_of_message_id(message_id: &str) -> Option<String> {
    let inner = message_id.trim().trim_matches(['<', '>']);
    let (id, _) = inner.split_once('@')?;
    (id.len() == 36 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'))
        .then(|| id.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_return_path_names_its_message_and_a_forged_one_does_not() {
        let id = "0191f00d-0000-7000-8000-000000000002";
        let rp = return_path(b"key", id, "bounces.brand.example");
        assert!(rp.starts_with("b-0191f00d-0000-7000-8000-000000000002-"));
        assert!(rp.ends_with("@bounces.brand.example"));
        assert_eq!(message_of(b"key", &rp).as_deref(), Some(id));
        assert_eq!(
            message_of(b"key", &format!("<{}>", rp.to_uppercase())).as_deref(),
            Some(id)
        );
        assert_eq!(message_of(b"other key", &rp), None);
        let forged = rp.replace("000000000002", "000000000003");
        assert_eq!(message_of(b"key", &forged), None);
        assert_eq!(message_of(b"key", "news@brand.example"), None);
        assert_eq!(message_of(b"key", "b-nodash@brand.example"), None);
    }

    #[test]
    fn a_reference_names_its_message_and_a_forged_one_does_not() {
        let id = "0191f00d-0000-7000-8000-000000000002";
        let r = reference(b"key", id);
        assert_eq!(message_of_reference(b"key", &r).as_deref(), Some(id));
        assert_eq!(
            message_of_reference(b"key", &format!(" <{r}> ")).as_deref(),
            Some(id)
        );
        assert_eq!(message_of_reference(b"other key", &r), None);
        let forged = r.replace("000000000002", "000000000003");
        assert_eq!(message_of_reference(b"key", &forged), None);
        assert_eq!(message_of_reference(b"key", &"a".repeat(200)), None);
    }

    #[test]
    fn our_message_ids_are_read_back() {
        assert_eq!(
            message_of_message_id("<0191F00D-0000-7000-8000-000000000002@brand.example>")
                .as_deref(),
            Some("0191f00d-0000-7000-8000-000000000002")
        );
        assert_eq!(message_of_message_id("<CAF=abc@mail.gmail.com>"), None);
    }
}
