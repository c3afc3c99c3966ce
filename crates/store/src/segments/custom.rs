//! Custom-field conditions: the value of a key of the contact's metadata (JSON kept as
//! text), read by each database's own JSON functions (SQLite's `json_extract` and
//! `json_type`, PostgreSQL's `->>` and `jsonb_typeof` on the text cast to `jsonb`), so that
//! both give the same answer: a string as it is, a number as its text, `true`/`false`,
//! NULL for a missing key or a JSON null (`ee_core::segment::custom`). The key is a bound
//! parameter (SQLite's as the path `$."key"`, which the name's rules keep well formed).

use ee_core::segment::{Op, Operand, custom_operand};
use serde_json::Value;

use super::compile::{Compiler, Param, Sql};
use crate::Backend;

/// PostgreSQL's view of the metadata.
const JSONB: &str = "CAST(c.metadata AS jsonb)";

impl Compiler {
    pub(super) fn custom(&mut self, name: &str, op: Op, value: &Value) -> Sql {
        let operand = custom_operand(name, op, value).map_err(|e| e.to_string())?;
        let key = match self.backend {
            Backend::Sqlite => self.push(Param::Text(format!("$.\"{name}\""))),
            Backend::Postgres => self.push(Param::Text(name.to_owned())),
        };
        Ok(match operand {
            Operand::Number(_) => {
                let number = self.number(&key);
                self.compare(&number, op, operand, false)
            }
            _ => {
                let text = format!("LOWER({})", self.text(&key));
                self.compare(&text, op, operand, true)
            }
        })
    }

    /// The value at `key` as text.
    fn text(&self, key: &str) -> String {
        match self.backend {
            Backend::Sqlite => format!(
                "(CASE json_type(c.metadata, {key}) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' \
                 ELSE CAST(json_extract(c.metadata, {key}) AS TEXT) END)"
            ),
            Backend::Postgres => format!("({JSONB} ->> {key})"),
        }
    }

    /// The value at `key` as a number: a JSON number, or a string holding one (an optional
    /// `-`, digits, an optional decimal part; 20 characters at most, spaces around
    /// ignored); NULL otherwise. The same rule as `ee_core::segment::numeric_text`.
    fn number(&self, key: &str) -> String {
        match self.backend {
            Backend::Sqlite => {
                let v = format!("TRIM(json_extract(c.metadata, {key}))");
                let s = format!("(CASE WHEN {v} GLOB '-*' THEN SUBSTR({v}, 2) ELSE {v} END)");
                format!(
                    "(CASE WHEN json_type(c.metadata, {key}) IN ('integer', 'real') THEN json_extract(c.metadata, {key}) \
                     WHEN json_type(c.metadata, {key}) = 'text' AND LENGTH({v}) <= 20 AND {s} GLOB '[0-9]*' \
                     AND {s} GLOB '*[0-9]' AND {s} NOT GLOB '*[^0-9.]*' AND {s} NOT GLOB '*.*.*' \
                     THEN CAST({v} AS REAL) END)"
                )
            }
            Backend::Postgres => {
                let v = format!("TRIM({JSONB} ->> {key})");
                format!(
                    "(CASE WHEN jsonb_typeof({JSONB} -> {key}) = 'number' THEN CAST({JSONB} ->> {key} AS DOUBLE PRECISION) \
                     WHEN jsonb_typeof({JSONB} -> {key}) = 'string' AND LENGTH({v}) <= 20 \
                     AND {v} ~ '^-?[0-9]+(\\.[0-9]+)?$' THEN CAST({v} AS DOUBLE PRECISION) END)"
                )
            }
        }
    }
}
