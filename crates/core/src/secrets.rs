//! Sealing secrets at rest (DKIM private keys, MailWizz keys, SMTP passwords) with the
//! master key: XChaCha20-Poly1305, a random 192-bit nonce per value, and the purpose
//! as associated data so a sealed value cannot be moved to another column.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::Rng;
use thiserror::Error;

const VERSION: &str = "v1";
pub const MASTER_KEY_LEN: usize = 32;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SealError {
    #[error("the master key must be {MASTER_KEY_LEN} bytes")]
    KeyLength,
    #[error("the sealed value is malformed")]
    Malformed,
    #[error("the sealed value does not open with this master key")]
    Open,
}

#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    pub fn new(master_key: &[u8]) -> Result<Self, SealError> {
        let cipher =
            XChaCha20Poly1305::new_from_slice(master_key).map_err(|_| SealError::KeyLength)?;
        Ok(Self { cipher })
    }

    /// `v1:<base64 nonce ‖ ciphertext>`
    pub fn seal(&self, purpose: &str, plaintext: &[u8]) -> String {
        let mut nonce = [0u8; 24];
        rand::rng().fill(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: purpose.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{VERSION}:{}", STANDARD.encode(out))
    }

    pub fn open(&self, purpose: &str, sealed: &str) -> Result<Vec<u8>, SealError> {
        let body = sealed
            .strip_prefix(VERSION)
            .and_then(|rest| rest.strip_prefix(':'))
            .ok_or(SealError::Malformed)?;
        let bytes = STANDARD.decode(body).map_err(|_| SealError::Malformed)?;
        if bytes.len() < 24 + 16 {
            return Err(SealError::Malformed);
        }
        let (nonce, ciphertext) = bytes.split_at(24);
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: purpose.as_bytes(),
                },
            )
            .map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open() {
        let sealer = Sealer::new(&[7u8; 32]).unwrap();
        let sealed = sealer.seal("dkim", b"-----BEGIN PRIVATE KEY-----");
        assert!(sealed.starts_with("v1:"));
        assert!(!sealed.contains("PRIVATE"));
        assert_ne!(
            sealed,
            sealer.seal("dkim", b"-----BEGIN PRIVATE KEY-----"),
            "nonce is random"
        );
        assert_eq!(
            sealer.open("dkim", &sealed).unwrap(),
            b"-----BEGIN PRIVATE KEY-----"
        );
    }

    #[test]
    fn wrong_key_purpose_or_tampering_fail() {
        let sealer = Sealer::new(&[7u8; 32]).unwrap();
        let other = Sealer::new(&[8u8; 32]).unwrap();
        let sealed = sealer.seal("mailwizz", b"key");
        assert_eq!(other.open("mailwizz", &sealed), Err(SealError::Open));
        assert_eq!(sealer.open("smtp", &sealed), Err(SealError::Open));
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(sealer.open("mailwizz", &tampered).is_err());
        assert_eq!(sealer.open("mailwizz", "v0:abc"), Err(SealError::Malformed));
        assert_eq!(Sealer::new(&[1u8; 16]).unwrap_err(), SealError::KeyLength);
    }
}
