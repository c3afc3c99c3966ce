//! Received mail read by independent code: Python's `email` package parses it and dkimpy
//! verifies its DKIM signature against the key published only where the signature must
//! point (`<selector>._domainkey.<domain>`), so a wrong `d=` or `s=` fails.

use serde_json::Value;

use super::TestApp;

const PARSE: &str = r#"
import email, json, sys
from email import policy
import dkim
raw = open(sys.argv[1], 'rb').read()
published = sys.argv[2].lower().rstrip('.')
record = sys.argv[3].encode()
msg = email.message_from_bytes(raw, policy=policy.default)
asked = []
def dns(name, timeout=5):
    name = name.decode() if isinstance(name, bytes) else name
    asked.append(name)
    return record if name.lower().rstrip('.') == published else None
html = msg.get_body(preferencelist=('html',))
text = msg.get_body(preferencelist=('plain',))
try:
    verified = bool(dkim.verify(raw, dnsfunc=dns)) if record else None
except Exception:
    verified = False
print(json.dumps({
    "content_type": msg.get_content_type(),
    "subject": str(msg["Subject"]),
    "from": str(msg["From"]),
    "to": str(msg["To"]),
    "message_id": str(msg["Message-ID"]),
    "date": str(msg["Date"]),
    "list_unsubscribe": str(msg["List-Unsubscribe"]),
    "list_unsubscribe_post": str(msg["List-Unsubscribe-Post"]),
    "virtual_mta": str(msg["X-Virtual-MTA"]),
    "tenant": str(msg["X-Tenant"]),
    "html": html.get_content() if html else None,
    "html_charset": html.get_content_charset() if html else None,
    "text": text.get_content() if text else None,
    "dkim": verified,
    "dkim_asked": asked,
}))
"#;

/// A DKIM key's TXT record and the name it is published at.
#[derive(Debug, Clone)]
pub struct Published {
    pub name: String,
    pub txt: String,
}

/// Parses a received message and verifies its DKIM signature against `published` only.
pub fn inspect(data: &[u8], published: &Published) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("message.eml");
    std::fs::write(&path, data).unwrap();
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(PARSE)
        .arg(&path)
        .arg(&published.name)
        .arg(&published.txt)
        .output()
        .expect("python3 (with dkimpy: pip install dkimpy)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The DKIM record the API tells the tenant of `key` to publish for `domain` under
/// `selector`.
pub async fn published_dkim(app: &TestApp, key: &str, domain: &str, selector: &str) -> Published {
    let domains = app.get("/api/v1/domains", key).await;
    let id = domains.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["domain"] == domain)
        .unwrap_or_else(|| panic!("no domain {domain}: {}", domains.body))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let records = app
        .get(&format!("/api/v1/domains/{id}/dns-records"), key)
        .await;
    let name = format!("{selector}._domainkey.{domain}");
    let txt = records.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name.as_str())
        .unwrap_or_else(|| panic!("no record {name}: {}", records.body))["value"]
        .as_str()
        .unwrap()
        .to_owned();
    Published { name, txt }
}
