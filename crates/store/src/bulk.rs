//! Bulk statements that take any number of rows as one JSON array bound to a single
//! parameter, which the database itself reads back as rows (`jsonb_each` on SQLite,
//! `jsonb_array_elements` on PostgreSQL: parsed once, then read by position).
//!
//! Why not multi-row `VALUES`: a list of N rows is N × columns bind parameters, capped by
//! both databases, so it had to be cut into statements of 100 rows whose text grew with
//! their size, and PostgreSQL (plans forced custom) planned each big list again. One JSON
//! parameter gives one short statement per operation, prepared once and cached, for up
//! to `ROWS` rows each.

use sqlx::AnyConnection;

/// Rows per statement. A transaction may hold several statements: each one's parameter
/// is its rows' JSON text, copied by the driver and again by the database, and blocks of
/// several megabytes fragment glibc's heap (an import of 1 000 000 rows in statements of
/// 10 000 peaked at 314 MB RSS).
pub const ROWS: usize = 1000;

pub(crate) fn is_sqlite(conn: &AnyConnection) -> bool {
    conn.backend_name().eq_ignore_ascii_case("sqlite")
}

/// A `FROM` item yielding one row per element of the JSON array of arrays bound at
/// `param`, in a column named `value`: read the i-th field with `value ->> i` (text, or
/// NULL for a JSON null; cast numbers where they are needed).
pub fn rows(conn: &AnyConnection, param: &str) -> String {
    if is_sqlite(conn) {
        // Parsed once into JSONB: `json_each` would turn each row back into JSON text for
        // `value`, and every `->>` would parse that text again (a quarter of an import's CPU).
        format!("jsonb_each(jsonb({param}))")
    } else {
        // jsonb for the same reason: `->>` on a `json` value parses its text again.
        format!("jsonb_array_elements(CAST({param} AS jsonb)) AS j(value)")
    }
}

/// `IN (…)` over the strings of the JSON array bound at `param`, for a `WHERE` clause.
pub fn in_texts(conn: &AnyConnection, param: &str) -> String {
    if is_sqlite(conn) {
        format!("IN (SELECT value FROM json_each({param}))")
    } else {
        // An array, not a subquery: the planner then probes the index once per element.
        format!("= ANY(ARRAY(SELECT json_array_elements_text(CAST({param} AS json))))")
    }
}

/// The JSON text of a list of rows (each a JSON array) or of strings.
pub fn encode<T: serde::Serialize>(rows: &[T]) -> String {
    serde_json::to_string(rows).unwrap_or_else(|_| "[]".to_owned())
}
