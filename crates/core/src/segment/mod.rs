//! Segment expressions: named, saved filters over tags, contact fields, custom fields and
//! engagement with AND, OR and NOT, e.g.
//! `{"and": [{"tag": "TYPE:LAWYER"}, {"field": "country", "op": "eq", "value": "FR"}]}`.
//! They are checked here and compiled to SQL by the store, so they run in the database.

mod custom;
mod engagement;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use custom::{MAX_NAME_CHARS, custom_operand, numeric_text};
pub use engagement::{Activity, Engagement, MAX_AT_LEAST, MAX_DAYS, campaigns};

/// The longest text a comparison takes (a value, or each value of a list), in characters.
pub const MAX_VALUE_CHARS: usize = 500;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Expr {
    And {
        and: Vec<Expr>,
    },
    Or {
        or: Vec<Expr>,
    },
    Not {
        not: Box<Expr>,
    },
    /// Has this tag or a descendant of it.
    Tag {
        tag: String,
    },
    Field {
        field: Field,
        op: Op,
        #[serde(default)]
        value: Value,
    },
    /// A custom field (a key of the contact's metadata), e.g.
    /// `{"custom": "profession", "op": "eq", "value": "lawyer"}`.
    Custom {
        custom: String,
        op: Op,
        #[serde(default)]
        value: Value,
    },
    /// What the contact did or was sent, e.g. `{"engagement": "opened", "days": 30}`.
    Engagement(Engagement),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Language,
    Country,
    Status,
    /// The data source's slug.
    Source,
    /// valid, risky, invalid or unknown.
    Validation,
    CreatedAt,
    /// Last open or click.
    EngagedAt,
    Email,
    Category,
    City,
}

impl Field {
    pub fn is_date(self) -> bool {
        matches!(self, Field::CreatedAt | Field::EngagedAt)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Eq,
    Neq,
    In,
    NotIn,
    /// Dates: strictly before / after (RFC 3339, or `-30d` for 30 days ago).
    Before,
    After,
    IsNull,
    NotNull,
    /// Text: ends with (e.g. a domain).
    EndsWith,
    /// Text: holds / begins with.
    Contains,
    StartsWith,
    /// Custom fields holding a number (a JSON number, or text such as `42` or `-1.5`):
    /// greater than, at least, less than, at most.
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Op {
    pub fn is_numeric(self) -> bool {
        matches!(self, Op::Gt | Op::Gte | Op::Lt | Op::Lte)
    }
}

/// A checked operand.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    None,
    Text(String),
    List(Vec<String>),
    Time(i64),
    Number(f64),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ExprError(pub String);

/// Parses a relative (`-30d`, `-12h`) or RFC 3339 time into epoch ms.
pub fn parse_time(text: &str, now_ms: i64) -> Option<i64> {
    if let Some(rel) = text.strip_prefix('-') {
        let (n, unit) = rel.split_at(rel.len().checked_sub(1)?);
        let n: i64 = n.parse().ok()?;
        let ms = match unit {
            "d" => 86_400_000,
            "h" => 3_600_000,
            "m" => 60_000,
            _ => return None,
        };
        return Some(now_ms - n * ms);
    }
    crate::timefmt::parse_rfc3339(text)
}

/// Checks the operand of a field comparison.
pub fn operand(field: Field, op: Op, value: &Value, now_ms: i64) -> Result<Operand, ExprError> {
    let text = |v: &Value| {
        v.as_str()
            .ok_or_else(|| ExprError(format!("{field:?} {op:?} needs a string")))
            .and_then(bounded)
    };
    match op {
        Op::IsNull | Op::NotNull => Ok(Operand::None),
        Op::Before | Op::After => {
            if !field.is_date() {
                return Err(ExprError(format!(
                    "{op:?} applies to created_at and engaged_at only"
                )));
            }
            let t = text(value)?;
            parse_time(&t, now_ms)
                .map(Operand::Time)
                .ok_or_else(|| ExprError(format!("{t:?} is not a date (RFC 3339 or -30d)")))
        }
        _ if field.is_date() => Err(ExprError(format!(
            "{field:?} takes before, after, is_null or not_null"
        ))),
        Op::Gt | Op::Gte | Op::Lt | Op::Lte => {
            Err(ExprError(format!("{op:?} applies to custom fields only")))
        }
        Op::Eq | Op::Neq | Op::EndsWith | Op::Contains | Op::StartsWith => {
            Ok(Operand::Text(text(value)?))
        }
        Op::In | Op::NotIn => list(op, value, text).map(Operand::List),
    }
}

/// A comparison's text, within its bound.
fn bounded(s: &str) -> Result<String, ExprError> {
    if s.chars().count() > MAX_VALUE_CHARS {
        return Err(ExprError(format!(
            "a value holds at most {MAX_VALUE_CHARS} characters"
        )));
    }
    Ok(s.to_owned())
}

/// The values of `in` / `not_in`: 1 to 1000, each read by `item`.
fn list(
    op: Op,
    value: &Value,
    item: impl Fn(&Value) -> Result<String, ExprError>,
) -> Result<Vec<String>, ExprError> {
    let items = value
        .as_array()
        .ok_or_else(|| ExprError(format!("{op:?} needs a list")))?;
    if items.is_empty() || items.len() > 1000 {
        return Err(ExprError("a list needs 1 to 1000 values".into()));
    }
    items.iter().map(item).collect()
}

/// Checks a whole expression: known fields and operators, operands, tags, and size.
pub fn check(expr: &Expr, now_ms: i64) -> Result<(), ExprError> {
    fn walk(expr: &Expr, depth: usize, nodes: &mut usize, now_ms: i64) -> Result<(), ExprError> {
        *nodes += 1;
        if depth > 16 || *nodes > 500 {
            return Err(ExprError(
                "the expression is too large (depth 16, 500 terms)".into(),
            ));
        }
        match expr {
            Expr::And { and: items } | Expr::Or { or: items } => {
                if items.is_empty() {
                    return Err(ExprError("and/or need at least one term".into()));
                }
                items
                    .iter()
                    .try_for_each(|e| walk(e, depth + 1, nodes, now_ms))
            }
            Expr::Not { not } => walk(not, depth + 1, nodes, now_ms),
            Expr::Tag { tag } => crate::tags::parse(tag)
                .map(|_| ())
                .map_err(|e| ExprError(e.to_string())),
            Expr::Field { field, op, value } => operand(*field, *op, value, now_ms).map(|_| ()),
            Expr::Custom { custom, op, value } => custom_operand(custom, *op, value).map(|_| ()),
            Expr::Engagement(e) => e.check(),
        }
    }
    walk(expr, 0, &mut 0, now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn expr(v: Value) -> Result<Expr, String> {
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    #[test]
    fn parse_and_check() {
        let e = expr(json!({"and": [{"tag": "TYPE:LAWYER"}, {"or": [{"field": "country", "op": "eq", "value": "FR"}, {"not": {"field": "language", "op": "in", "value": ["en", "de"]}}]}, {"field": "created_at", "op": "after", "value": "-30d"}]})).unwrap();
        assert!(check(&e, 1_000_000_000_000).is_ok());
        let bad_field = expr(json!({"field": "salary", "op": "eq", "value": "1"}));
        assert!(bad_field.is_err());
        let bad_op = expr(json!({"field": "country", "op": "after", "value": "-1d"})).unwrap();
        assert!(check(&bad_op, 0).is_err());
        let empty = expr(json!({"and": []})).unwrap();
        assert!(check(&empty, 0).is_err());
        let bad_tag = expr(json!({"tag": "TYPE:"})).unwrap();
        assert!(check(&bad_tag, 0).is_err());
        let bad_list = expr(json!({"field": "country", "op": "in", "value": "FR"})).unwrap();
        assert!(check(&bad_list, 0).is_err());
    }

    #[test]
    fn text_operators_and_their_bounds() {
        let ok = |v: Value| check(&expr(v).unwrap(), 0);
        assert!(ok(json!({"field": "city", "op": "contains", "value": "par"})).is_ok());
        assert!(ok(json!({"field": "email", "op": "starts_with", "value": "info@"})).is_ok());
        assert!(ok(json!({"custom": "profession", "op": "eq", "value": "lawyer"})).is_ok());
        assert!(ok(json!({"custom": "age", "op": "gte", "value": 30})).is_ok());
        assert!(ok(json!({"engagement": "received", "campaign": "c1", "days": 7})).is_ok());
        // Numeric comparisons are custom fields' only.
        assert!(ok(json!({"field": "city", "op": "gt", "value": "3"})).is_err());
        assert!(ok(json!({"field": "city", "op": "eq", "value": "x".repeat(501)})).is_err());
        assert!(ok(json!({"field": "city", "op": "in", "value": ["x".repeat(501)]})).is_err());
        assert!(ok(json!({"custom": "bad\"name", "op": "eq", "value": "x"})).is_err());
        assert!(ok(json!({"engagement": "opened", "days": 4000})).is_err());
        // An expression that holds them keeps its bounds: 500 terms at most.
        let many: Vec<Value> = (0..501)
            .map(|_| json!({"engagement": "opened", "days": 1}))
            .collect();
        assert!(ok(json!({"or": many})).is_err());
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("-2d", 10 * 86_400_000), Some(8 * 86_400_000));
        assert_eq!(parse_time("-3h", 10_800_000), Some(0));
        assert_eq!(
            parse_time("2026-01-01T00:00:00Z", 0),
            crate::timefmt::parse_rfc3339("2026-01-01T00:00:00Z")
        );
        assert_eq!(parse_time("-3w", 0), None);
        assert_eq!(parse_time("soon", 0), None);
    }
}
