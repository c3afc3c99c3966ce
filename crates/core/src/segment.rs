//! Segment expressions: named, saved filters over tags and contact fields with AND, OR
//! and NOT, e.g. `{"and": [{"tag": "TYPE:LAWYER"}, {"field": "country", "op": "eq", "value": "FR"}]}`.
//! They are checked here and compiled to SQL by the store, so they run in the database.

use serde::{Deserialize, Serialize};
use serde_json::Value;

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
}

/// A checked operand.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    None,
    Text(String),
    List(Vec<String>),
    Time(i64),
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
            .map(str::to_owned)
            .ok_or_else(|| ExprError(format!("{field:?} {op:?} needs a string")))
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
        Op::Eq | Op::Neq | Op::EndsWith => Ok(Operand::Text(text(value)?)),
        Op::In | Op::NotIn => {
            let items = value
                .as_array()
                .ok_or_else(|| ExprError(format!("{op:?} needs a list")))?;
            if items.is_empty() || items.len() > 1000 {
                return Err(ExprError("a list needs 1 to 1000 values".into()));
            }
            items
                .iter()
                .map(text)
                .collect::<Result<Vec<_>, _>>()
                .map(Operand::List)
        }
    }
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
