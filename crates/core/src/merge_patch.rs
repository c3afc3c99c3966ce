//! JSON Merge Patch (RFC 7396): a partial document applied onto a whole one. A member
//! of the patch replaces the target's (objects merged member by member), `null` removes
//! it. Written here rather than taken from a crate: the RFC's algorithm is the eight
//! lines below, on the `serde_json` values every caller already holds.

use serde_json::{Map, Value};

/// Applies `patch` onto `target` (RFC 7396 §2).
pub fn apply(target: &mut Value, patch: &Value) {
    let Value::Object(members) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(whole) = target {
        for (name, value) in members {
            if value.is_null() {
                whole.remove(name);
            } else {
                apply(whole.entry(name.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patched(target: Value, patch: Value) -> Value {
        let mut t = target;
        apply(&mut t, &patch);
        t
    }

    #[test]
    fn members_replace_merge_and_null_removes() {
        assert_eq!(
            patched(json!({"a": "b"}), json!({"a": "c"})),
            json!({"a": "c"})
        );
        assert_eq!(
            patched(json!({"a": "b"}), json!({"b": "c"})),
            json!({"a": "b", "b": "c"})
        );
        assert_eq!(patched(json!({"a": "b"}), json!({"a": null})), json!({}));
        assert_eq!(
            patched(json!({"a": "b", "b": "c"}), json!({"a": null})),
            json!({"b": "c"})
        );
        // Lists are values: replaced whole, never merged.
        assert_eq!(
            patched(json!({"a": ["b"]}), json!({"a": "c"})),
            json!({"a": "c"})
        );
        assert_eq!(
            patched(json!({"a": "c"}), json!({"a": ["b"]})),
            json!({"a": ["b"]})
        );
        assert_eq!(
            patched(json!({"a": [{"b": "c"}]}), json!({"a": [1]})),
            json!({"a": [1]})
        );
        // Objects merge member by member, at any depth.
        assert_eq!(
            patched(
                json!({"a": {"b": "c", "d": "e"}}),
                json!({"a": {"b": "z", "d": null}})
            ),
            json!({"a": {"b": "z"}})
        );
        assert_eq!(
            patched(json!({"e": null}), json!({"a": 1})),
            json!({"e": null, "a": 1})
        );
        // A patch that is not an object replaces the whole.
        assert_eq!(patched(json!({"a": "c"}), json!(["c"])), json!(["c"]));
        assert_eq!(patched(json!({"a": "foo"}), json!(null)), json!(null));
        assert_eq!(patched(json!([1, 2]), json!({"a": "b"})), json!({"a": "b"}));
        assert_eq!(
            patched(json!({}), json!({"a": {"bb": {"ccc": null}}})),
            json!({"a": {"bb": {}}})
        );
    }
}
