//! DKIM DNS records (RFC 6376 §3.6.1), shared by key generation and the DNS checks.

/// The purpose private keys are sealed under (`secrets::Sealer`).
pub const SEAL_PURPOSE: &str = "dkim-private-key";

/// Where a domain's DKIM key is in its rotation.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    /// Signs the domain's mail.
    Active,
    /// Replaced by a newer key, still in DNS so that mail it signed still verifies.
    Published,
    /// Removed from DNS: signs and verifies nothing.
    Retired,
}

crate::names::names!(KeyStatus {
    Active => "active",
    Published => "published",
    Retired => "retired",
});

/// The TXT record at `<selector>._domainkey.<domain>`; `key_type` is `rsa` or `ed25519`.
pub fn dns_record(key_type: &str, public_b64: &str) -> String {
    format!("v=DKIM1; k={key_type}; p={public_b64}")
}

/// The `p=` value of a DKIM record, whitespace removed, if it has one.
pub fn published_key(txt: &str) -> Option<String> {
    txt.split(';').find_map(|tag| {
        let (name, value) = tag.split_once('=')?;
        (name.trim() == "p").then(|| value.chars().filter(|c| !c.is_whitespace()).collect())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records() {
        assert_eq!(dns_record("rsa", "AB"), "v=DKIM1; k=rsa; p=AB");
        assert_eq!(
            published_key("v=DKIM1; k=rsa; p=AB CD\tEF").as_deref(),
            Some("ABCDEF")
        );
        assert_eq!(published_key("v=DKIM1; k=rsa"), None);
    }
}
