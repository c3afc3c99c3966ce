//! What the audit log keeps of a change: before and after, with secrets redacted.

use serde_json::Value;

const REDACTED: &str = "[redacted]";

/// True for a JSON key whose value is a secret or derived from one.
fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    const PARTS: [&str; 6] = [
        "password",
        "secret",
        "token",
        "private_key",
        "api_key",
        "_hash",
    ];
    key == "key" || key.ends_with("_key") || PARTS.iter().any(|part| key.contains(part))
}

/// A copy of `value` with every secret-looking field replaced, at any depth.
pub fn redact(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if is_secret_key(k) && !v.is_null() {
                        Value::String(REDACTED.into())
                    } else {
                        redact(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_redacted_at_any_depth() {
        let before = json!({
            "name": "Brand",
            "password": "hunter22",
            "settings": {"smtp": {"smtp_password": "x", "host": "relay"}, "api_key": "k"},
            "keys": [{"key": "ee_abc", "key_prefix": "ee_abc"}],
            "key_hash": "ff",
            "expires_at": null,
            "access_token": "jwt",
        });
        let out = redact(&before);
        assert_eq!(
            out,
            json!({
                "name": "Brand",
                "password": REDACTED,
                "settings": {"smtp": {"smtp_password": REDACTED, "host": "relay"}, "api_key": REDACTED},
                "keys": [{"key": REDACTED, "key_prefix": "ee_abc"}],
                "key_hash": REDACTED,
                "expires_at": null,
                "access_token": REDACTED,
            })
        );
    }
}
