//! Webhook signatures computed here, from the scheme as documented, not with the product's
//! `ee_core::signing`: a change of scheme on both sides fails the tests.
//! Timestamped: `sha256=<hex HMAC-SHA256(secret, "<unix seconds>.<body>")>`;
//! body only: `sha256=<hex HMAC-SHA256(secret, body)>`.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

fn hex_hmac(secret: &[u8], message: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

pub fn timestamped(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut message = format!("{timestamp}.").into_bytes();
    message.extend_from_slice(body);
    format!("sha256={}", hex_hmac(secret, &message))
}

pub fn body_only(secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", hex_hmac(secret, body))
}
