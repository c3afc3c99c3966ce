//! Conditions on a contact's custom fields (the keys of its metadata, as CSV columns and
//! the ingest API's extra keys write them): the name's rules and the operand's.
//!
//! A custom field is compared as text, case-insensitively: a string as it is, a number as
//! its JSON text, `true`/`false` as those words; `is_null` holds when the key is missing
//! or null. `gt`, `gte`, `lt` and `lte` compare numbers: a JSON number, or a string that
//! is one (`42`, `-1.5`: digits with an optional sign and decimal part, at most 20
//! characters); any other value is not greater or less than anything.

use serde_json::Value;

use super::{ExprError, Op, Operand, bounded, list};

/// The longest custom-field name a condition takes, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// A custom field's name: 1 to 64 letters, digits, spaces, `_`, `-` or `.`, not starting
/// or ending with a space (CSV headers such as `Favourite colour` are names).
fn check_name(name: &str) -> Result<(), ExprError> {
    let allowed = |c: char| c.is_alphanumeric() || matches!(c, ' ' | '_' | '-' | '.');
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(ExprError(format!(
            "a custom field's name holds 1 to {MAX_NAME_CHARS} characters"
        )));
    }
    if !name.chars().all(allowed) || name.starts_with(' ') || name.ends_with(' ') {
        return Err(ExprError(format!(
            "custom field {name:?}: a name holds letters, digits, spaces, '_', '-' and '.'"
        )));
    }
    Ok(())
}

/// Whether `text` is a number the numeric operators read (the database applies the same
/// rule to the stored text): an optional `-`, digits, an optional `.` and digits.
pub fn numeric_text(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "1"));
    text.len() <= 20
        && !whole.is_empty()
        && !fraction.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

/// Checks a custom-field condition and gives its operand.
pub fn custom_operand(name: &str, op: Op, value: &Value) -> Result<Operand, ExprError> {
    check_name(name)?;
    let text = |v: &Value| match v {
        Value::String(s) => bounded(s),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(ExprError(format!(
            "custom field {name:?} {op:?} needs a string, a number or true/false"
        ))),
    };
    match op {
        Op::IsNull | Op::NotNull => Ok(Operand::None),
        Op::Before | Op::After => Err(ExprError(format!(
            "{op:?} applies to created_at and engaged_at only"
        ))),
        Op::Gt | Op::Gte | Op::Lt | Op::Lte => {
            let number = match value {
                Value::Number(n) => n.as_f64(),
                Value::String(s) if numeric_text(s.trim()) => s.trim().parse().ok(),
                _ => None,
            };
            number
                .filter(|n: &f64| n.is_finite())
                .map(Operand::Number)
                .ok_or_else(|| ExprError(format!("custom field {name:?} {op:?} needs a number")))
        }
        Op::Eq | Op::Neq | Op::EndsWith | Op::Contains | Op::StartsWith => {
            Ok(Operand::Text(text(value)?))
        }
        Op::In | Op::NotIn => list(op, value, text).map(Operand::List),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names() {
        for ok in ["profession", "Favourite colour", "n.b-2_x", "métier"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            " lead",
            "trail ",
            "a\"b",
            "a\\b",
            "$.x",
            "a[0]",
            "tab\there",
            "x'y",
            &"n".repeat(65),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name(&"n".repeat(64)).is_ok());
    }

    #[test]
    fn operands() {
        assert_eq!(
            custom_operand("age", Op::Eq, &json!(42)),
            Ok(Operand::Text("42".into()))
        );
        assert_eq!(
            custom_operand("vip", Op::Eq, &json!(true)),
            Ok(Operand::Text("true".into()))
        );
        assert_eq!(
            custom_operand("age", Op::Gt, &json!("30")),
            Ok(Operand::Number(30.0))
        );
        assert_eq!(
            custom_operand("age", Op::Lte, &json!(-1.5)),
            Ok(Operand::Number(-1.5))
        );
        assert_eq!(
            custom_operand("x", Op::In, &json!(["a", 1])),
            Ok(Operand::List(vec!["a".into(), "1".into()]))
        );
        assert_eq!(
            custom_operand("x", Op::IsNull, &json!(null)),
            Ok(Operand::None)
        );
        for (op, value) in [
            (Op::Gt, json!("thirty")),
            (Op::Gt, json!("1e5")),
            (Op::Lt, json!(null)),
            (Op::Eq, json!(null)),
            (Op::Eq, json!({"a": 1})),
            (Op::Eq, json!("é".repeat(501))),
            (Op::In, json!([])),
            (Op::In, json!("a")),
            (Op::Before, json!("-1d")),
        ] {
            assert!(custom_operand("x", op, &value).is_err(), "{op:?} {value}");
        }
    }

    #[test]
    fn numbers_as_text() {
        for ok in ["0", "42", "-1", "3.25", "-0.5", "12345678901234567890"] {
            assert!(numeric_text(ok), "{ok}");
        }
        for bad in [
            "",
            "-",
            ".",
            "1.",
            ".5",
            "1.2.3",
            "1e5",
            "+1",
            " 1",
            "0x10",
            "--1",
            "1-2",
            "123456789012345678901",
        ] {
            assert!(!numeric_text(bad), "{bad:?}");
        }
    }
}
