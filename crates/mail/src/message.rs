//! Building a message (mail-builder: multipart/alternative, UTF-8 with the transfer
//! encoding each part needs) and signing it with DKIM (mail-auth: relaxed/relaxed,
//! RSA-SHA256 or Ed25519-SHA256).

use std::borrow::Cow;

use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};
use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::date::Date;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::raw::Raw;

#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("the DKIM key cannot be read: {0}")]
    Key(String),
    #[error("DKIM signing failed: {0}")]
    Signing(String),
    #[error("the message cannot be written: {0}")]
    Build(String),
}

/// Everything a message is made of, already rendered and tracked.
#[derive(Debug, Clone, Default)]
pub struct Outgoing<'a> {
    pub from_email: &'a str,
    pub from_name: Option<&'a str>,
    pub to_email: &'a str,
    pub to_name: Option<&'a str>,
    pub reply_to: Option<&'a str>,
    pub subject: &'a str,
    pub html: Option<&'a str>,
    pub text: Option<&'a str>,
    /// Without angle brackets: `<id>@<domain>`.
    pub message_id: &'a str,
    pub date_secs: i64,
    /// One-click unsubscribe address (RFC 8058), and an optional mailto.
    pub unsubscribe_url: Option<&'a str>,
    pub unsubscribe_mailto: Option<&'a str>,
    /// Extra headers in order (X-Campaign-ID, X-Tenant, X-Virtual-MTA …).
    pub headers: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

fn address<'a>(email: &'a str, name: Option<&'a str>) -> Address<'a> {
    match name.filter(|n| !n.trim().is_empty()) {
        Some(name) => Address::new_address(Some(name), email),
        None => Address::new_address(None::<&str>, email),
    }
}

/// Serialises the message (CRLF line ends).
pub fn build(message: &Outgoing<'_>) -> Result<Vec<u8>, MessageError> {
    let mut builder = MessageBuilder::new()
        .from(address(message.from_email, message.from_name))
        .to(address(message.to_email, message.to_name))
        .subject(message.subject)
        .date(Date::new(message.date_secs))
        .message_id(MessageId::new(message.message_id));
    if let Some(reply_to) = message.reply_to {
        builder = builder.reply_to(address(reply_to, None));
    }
    if let Some(url) = message.unsubscribe_url {
        let value = match message.unsubscribe_mailto {
            Some(mailto) => format!("<{url}>, <mailto:{mailto}>"),
            None => format!("<{url}>"),
        };
        builder = builder.header("List-Unsubscribe", Raw::new(value)).header(
            "List-Unsubscribe-Post",
            Raw::new("List-Unsubscribe=One-Click"),
        );
    }
    for (name, value) in &message.headers {
        builder = builder.header(name.clone(), Raw::new(value.clone()));
    }
    if let Some(text) = message.text {
        builder = builder.text_body(text);
    }
    if let Some(html) = message.html {
        builder = builder.html_body(html);
    }
    builder
        .write_to_vec()
        .map_err(|e| MessageError::Build(e.to_string()))
}

/// The headers a signature covers, when present; From first (RFC 6376 §5.4).
const SIGNED_HEADERS: [&str; 12] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "MIME-Version",
    "Content-Type",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "X-Campaign-ID",
    "X-EE-Ref",
];

enum Key {
    Rsa(DkimSigner<RsaKey<Sha256>, Done>),
    Ed25519(DkimSigner<Ed25519Key, Done>),
}

/// A domain's signing key, parsed once and reused for every message.
pub struct Signer {
    key: Key,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer([redacted])")
    }
}

fn pem_to_der(pem: &str) -> Result<Vec<u8>, MessageError> {
    use base64::Engine;
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::trim)
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|e| MessageError::Key(e.to_string()))
}

impl Signer {
    /// From a PKCS#8 PEM private key as `dkim::generate` makes them.
    pub fn new(
        algorithm: crate::dkim::Algorithm,
        private_pem: &str,
        domain: &str,
        selector: &str,
    ) -> Result<Self, MessageError> {
        let der = pem_to_der(private_pem)?;
        let key = match algorithm {
            crate::dkim::Algorithm::Rsa => {
                let key = RsaKey::<Sha256>::from_key_der(rustls_pki_types::PrivateKeyDer::Pkcs8(
                    der.into(),
                ))
                .map_err(|e| MessageError::Key(e.to_string()))?;
                Key::Rsa(configure(DkimSigner::from_key(key), domain, selector))
            }
            crate::dkim::Algorithm::Ed25519 => {
                let key = Ed25519Key::from_pkcs8_maybe_unchecked_der(&der)
                    .map_err(|e| MessageError::Key(e.to_string()))?;
                Key::Ed25519(configure(DkimSigner::from_key(key), domain, selector))
            }
        };
        Ok(Self { key })
    }

    /// The message with its `DKIM-Signature` header in front.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, MessageError> {
        let header = match &self.key {
            Key::Rsa(s) => s.sign(message).map(|sig| sig.to_header()),
            Key::Ed25519(s) => s.sign(message).map(|sig| sig.to_header()),
        }
        .map_err(|e| MessageError::Signing(e.to_string()))?;
        let mut out = Vec::with_capacity(header.len() + message.len());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(message);
        Ok(out)
    }
}

fn configure<T: mail_auth::common::crypto::SigningKey>(
    signer: mail_auth::dkim::DkimSigner<T, mail_auth::dkim::NeedDomain>,
    domain: &str,
    selector: &str,
) -> DkimSigner<T, Done> {
    signer
        .domain(domain)
        .selector(selector)
        .headers(SIGNED_HEADERS)
        .header_canonicalization(Canonicalization::Relaxed)
        .body_canonicalization(Canonicalization::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dkim::{Algorithm, generate};

    fn sample<'a>() -> Outgoing<'a> {
        Outgoing {
            from_email: "news@brand.test",
            from_name: Some("Brand Été"),
            to_email: "jean@example.test",
            to_name: Some("Jean"),
            subject: "Bienvenue — مرحبا",
            html: Some("<p>Bonjour Jean, voilà.</p>"),
            text: Some("Bonjour Jean, voilà."),
            message_id: "abc@brand.test",
            date_secs: 1_790_000_000,
            unsubscribe_url: Some("https://ee.test/u/tok"),
            headers: vec![("X-Tenant".into(), "brand".into())],
            ..Default::default()
        }
    }

    #[test]
    fn builds_alternative_with_headers() {
        let raw = String::from_utf8(build(&sample()).unwrap()).unwrap();
        assert!(raw.contains("Message-ID: <abc@brand.test>\r\n"));
        assert!(raw.contains("List-Unsubscribe: <https://ee.test/u/tok>\r\n"));
        assert!(raw.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
        assert!(raw.contains("X-Tenant: brand\r\n"));
        assert!(raw.contains("multipart/alternative"));
        assert!(raw.contains("Subject: =?utf-8?"));
    }

    #[test]
    fn signs_with_both_algorithms() {
        for algorithm in [Algorithm::Rsa, Algorithm::Ed25519] {
            let key = generate(algorithm).unwrap();
            let signer = Signer::new(algorithm, &key.private_pem, "brand.test", "s1").unwrap();
            let signed = signer.sign(&build(&sample()).unwrap()).unwrap();
            let text = String::from_utf8(signed).unwrap();
            assert!(text.starts_with("DKIM-Signature: v=1; a="), "{text}");
            assert!(text.contains("d=brand.test") && text.contains("s=s1"));
            assert!(text.contains("c=relaxed/relaxed"));
        }
    }
}
