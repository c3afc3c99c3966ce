//! Open, click and unsubscribe tokens, and the rewriting of a body for tracking.
//!
//! A token is `<kind>.<message id>.<index>.<mac>`, the MAC being the first 16 bytes of
//! HMAC-SHA256 over the rest, base64url. The check wants all 16 bytes: a shorter tag is
//! refused, not compared on its length (one byte would be forged in 256 tries). It carries what the endpoint needs, so a click
//! redirects only to the link `index` of that message: no open redirect.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Open,
    Click,
    Unsubscribe,
}

impl Kind {
    fn code(self) -> &'static str {
        match self {
            Kind::Open => "o",
            Kind::Click => "c",
            Kind::Unsubscribe => "u",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub kind: Kind,
    pub message_id: String,
    pub index: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's signature does not match")]
    BadSignature,
    #[error("the token is not of the expected kind")]
    WrongKind,
}

/// Bytes of the HMAC a token carries.
const TAG_BYTES: usize = 16;

fn mac(secret: &[u8], payload: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(payload.as_bytes());
    mac
}

pub fn sign(secret: &[u8], kind: Kind, message_id: &str, index: u32) -> String {
    let payload = format!("{}.{message_id}.{index}", kind.code());
    let tag = mac(secret, &payload).finalize().into_bytes();
    format!("{payload}.{}", URL_SAFE_NO_PAD.encode(&tag[..TAG_BYTES]))
}

/// Checks a token's MAC (in constant time) and kind.
pub fn verify(secret: &[u8], token: &str, expected: Kind) -> Result<Token, TokenError> {
    let (payload, tag) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
    let tag = URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(|_| TokenError::Malformed)?;
    let mut parts = payload.splitn(3, '.');
    let (Some(kind), Some(message_id), Some(index)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let index: u32 = index.parse().map_err(|_| TokenError::Malformed)?;
    if message_id.is_empty()
        || !message_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(TokenError::Malformed);
    }
    if tag.len() != TAG_BYTES {
        return Err(TokenError::BadSignature);
    }
    // `verify_truncated_left` compares in constant time; the length is fixed above.
    mac(secret, payload)
        .verify_truncated_left(&tag)
        .map_err(|_| TokenError::BadSignature)?;
    if kind != expected.code() {
        return Err(TokenError::WrongKind);
    }
    Ok(Token {
        kind: expected,
        message_id: message_id.to_owned(),
        index,
    })
}

/// Rewrites the `href` of every `<a>` whose target is http(s) with `rewrite(index, url)`,
/// except links to `keep` (the unsubscribe link); returns the body and the original links
/// in index order.
pub fn rewrite_links(
    html: &str,
    keep: Option<&str>,
    rewrite: impl FnMut(u32, &str) -> String,
) -> (String, Vec<String>) {
    let (out, links, _) = rewrite_links_counted(html, keep, rewrite);
    (out, links)
}

/// `rewrite_links`, with the work it did: the bytes its searches read. A test and the
/// benchmark hold it linear in the body's size (the time it takes depends on the machine,
/// the count does not).
pub fn rewrite_links_counted(
    html: &str,
    keep: Option<&str>,
    mut rewrite: impl FnMut(u32, &str) -> String,
) -> (String, Vec<String>, u64) {
    let mut out = String::with_capacity(html.len() + 256);
    let mut links = Vec::new();
    let lower = html.to_ascii_lowercase();
    let mut work = html.len() as u64;
    let mut copied = 0;
    let mut from = 0;
    loop {
        let Some(found) = lower[from..].find("<a") else {
            work += (lower.len() - from) as u64;
            break;
        };
        work += found as u64 + 2;
        let tag_start = from + found;
        from = tag_start + 2;
        if !lower[from..].starts_with(|c: char| c.is_ascii_whitespace()) {
            continue;
        }
        let Some(tag_end) = lower[tag_start..].find('>').map(|e| tag_start + e) else {
            work += (lower.len() - tag_start) as u64;
            break;
        };
        let tag = &lower[tag_start..tag_end];
        // Whatever `<a` lies before `tag_end` is inside this tag, not a tag of its own:
        // the next search starts after it, so each byte is read a bounded number of times
        // (`<a ` repeated before one `>` cost quadratic time).
        from = tag_end;
        // The tag is read to its end, and once more for the attribute.
        work += 2 * tag.len() as u64;
        let Some(href_at) = find_attribute(tag, "href") else {
            continue;
        };
        let value_start = tag_start + href_at;
        let quote = html.as_bytes()[value_start];
        let (start, end) = if quote == b'"' || quote == b'\'' {
            let close = html[value_start + 1..tag_end]
                .find(quote as char)
                .map_or(tag_end, |e| value_start + 1 + e);
            (value_start + 1, close)
        } else {
            let close = html[value_start..tag_end]
                .find(|c: char| c.is_ascii_whitespace())
                .map_or(tag_end, |e| value_start + e);
            (value_start, close)
        };
        let url = crate::template::decode_entities(html[start..end].trim());
        let is_web = url.starts_with("http://") || url.starts_with("https://");
        if !is_web || keep.is_some_and(|k| k == url) {
            continue;
        }
        let index = links.len() as u32;
        out.push_str(&html[copied..start]);
        let replacement = rewrite(index, &url);
        crate::template::escape_html_into(&replacement, &mut out);
        copied = end;
        links.push(url);
        from = tag_end;
    }
    out.push_str(&html[copied..]);
    (out, links, work)
}

/// The offset of an attribute's value (after `=` and spaces) inside a lower-cased tag.
fn find_attribute(tag: &str, name: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(found) = tag[from..].find(name) {
        let at = from + found;
        from = at + name.len();
        if at == 0 || !tag.as_bytes()[at - 1].is_ascii_whitespace() {
            continue;
        }
        let rest = &tag[from..];
        let trimmed = rest.trim_start();
        if let Some(after_eq) = trimmed.strip_prefix('=') {
            let value = after_eq.trim_start();
            return Some(tag.len() - value.len());
        }
    }
    None
}

/// Adds the open pixel before `</body>`, or at the end of a fragment.
pub fn add_open_pixel(html: &str, pixel_url: &str) -> String {
    let mut img = String::from("<img src=\"");
    crate::template::escape_html_into(pixel_url, &mut img);
    img.push_str("\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;border:0\">");
    match html.to_ascii_lowercase().rfind("</body>") {
        Some(at) => format!("{}{img}{}", &html[..at], &html[at..]),
        None => format!("{html}{img}"),
    }
}

/// Adds the hidden decoy link (`machine_hits::DECOY_INDEX`): no person sees or follows it,
/// so whoever does is a link scanner.
pub fn add_decoy_link(html: &str, decoy_url: &str) -> String {
    let mut a = String::from("<a href=\"");
    crate::template::escape_html_into(decoy_url, &mut a);
    a.push_str("\" style=\"display:none\" aria-hidden=\"true\" tabindex=\"-1\"></a>");
    match html.to_ascii_lowercase().rfind("</body>") {
        Some(at) => format!("{}{a}{}", &html[..at], &html[at..]),
        None => format!("{html}{a}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_decoy_link_is_hidden_before_the_end_of_the_body() {
        let html = super::add_decoy_link(
            "<html><body><p>hi</p></body></html>",
            "https://t.example/t/c/x&y",
        );
        assert_eq!(
            html,
            "<html><body><p>hi</p><a href=\"https://t.example/t/c/x&amp;y\" style=\"display:none\" aria-hidden=\"true\" tabindex=\"-1\"></a></body></html>"
        );
    }

    use super::*;

    const KEY: &[u8] = b"tracking-key";

    #[test]
    fn tokens_round_trip_and_refuse_tampering() {
        let t = sign(KEY, Kind::Click, "0193a0b1-2c3d", 4);
        let got = verify(KEY, &t, Kind::Click).unwrap();
        assert_eq!((got.message_id.as_str(), got.index), ("0193a0b1-2c3d", 4));
        assert_eq!(verify(KEY, &t, Kind::Open), Err(TokenError::WrongKind));
        assert_eq!(
            verify(b"other", &t, Kind::Click),
            Err(TokenError::BadSignature)
        );
        let tampered = t.replacen(".4.", ".5.", 1);
        assert_eq!(
            verify(KEY, &tampered, Kind::Click),
            Err(TokenError::BadSignature)
        );
        assert_eq!(verify(KEY, "x", Kind::Click), Err(TokenError::Malformed));
        assert_eq!(
            verify(KEY, "c.a/b.1.AAAA", Kind::Click),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn every_shorter_or_altered_tag_is_refused() {
        let t = sign(KEY, Kind::Unsubscribe, "0193a0b1-2c3d", 0);
        let (payload, tag) = t.rsplit_once('.').unwrap();
        let raw = URL_SAFE_NO_PAD.decode(tag).unwrap();
        assert_eq!(raw.len(), TAG_BYTES);
        for len in 0..TAG_BYTES {
            let short = format!("{payload}.{}", URL_SAFE_NO_PAD.encode(&raw[..len]));
            assert!(
                verify(KEY, &short, Kind::Unsubscribe).is_err(),
                "{len} bytes accepted"
            );
        }
        let long = format!(
            "{payload}.{}",
            URL_SAFE_NO_PAD.encode([raw.as_slice(), &[0]].concat())
        );
        assert!(verify(KEY, &long, Kind::Unsubscribe).is_err());
        for byte in 0..TAG_BYTES {
            for bit in 0..8 {
                let mut altered = raw.clone();
                altered[byte] ^= 1 << bit;
                let token = format!("{payload}.{}", URL_SAFE_NO_PAD.encode(&altered));
                assert_eq!(
                    verify(KEY, &token, Kind::Unsubscribe),
                    Err(TokenError::BadSignature)
                );
            }
        }
        assert!(verify(KEY, &t, Kind::Unsubscribe).is_ok());
    }

    #[test]
    fn links_are_rewritten_except_unsubscribe_and_non_web() {
        let html = "<p><a href=\"https://a.test/x?y=1&amp;z=2\">A</a> <a class=c href='http://b.test'>B</a> \
            <a href=\"mailto:x@y.test\">M</a> <a href=\"https://u.test/unsub\">U</a> <abbr>no</abbr> \
            <a name=top>T</a><A HREF=https://c.test/>C</A></p>";
        let (out, links) = rewrite_links(html, Some("https://u.test/unsub"), |i, _| {
            format!("https://t.test/c/{i}?q=1&r=2")
        });
        assert_eq!(
            links,
            vec![
                "https://a.test/x?y=1&z=2",
                "http://b.test",
                "https://c.test/"
            ]
        );
        assert!(out.contains("<a href=\"https://t.test/c/0?q=1&amp;r=2\">A</a>"));
        assert!(out.contains("href='https://t.test/c/1?q=1&amp;r=2'"));
        assert!(out.contains("HREF=https://t.test/c/2?q=1&amp;r=2>C"));
        assert!(out.contains("mailto:x@y.test") && out.contains("https://u.test/unsub"));
    }

    #[test]
    fn pixel_goes_before_body_end() {
        let out = add_open_pixel("<html><body>x</body></html>", "https://t.test/o/a&b");
        assert!(out.starts_with("<html><body>x<img src=\"https://t.test/o/a&amp;b\""));
        assert!(out.ends_with("</body></html>"));
        assert!(add_open_pixel("<p>x</p>", "u").starts_with("<p>x</p><img"));
    }
}
