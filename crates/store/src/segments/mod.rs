//! Saved segments, and the compilation of segment expressions (and the contact list's
//! filters, which are expressions too) into SQL over `contacts c`, so they run in the
//! database and never load contacts into memory: `compile` (tags and fields), `custom`
//! (custom fields, read from the metadata JSON), `engagement` (opens, clicks, messages
//! received, soft bounces, as subqueries on their tables).

mod compile;
mod custom;
mod engagement;

use crate::{Backend, Scope};
use compile::Compiler;
pub use compile::Param;
use ee_core::ids::new_id;
use ee_core::segment::Expr;
use sqlx::AnyConnection;

use crate::contacts::{COLUMNS, Contact};
use crate::{Result, StoreError};

/// SQL over the alias `c` with `$n` placeholders from `first`, and its values.
#[derive(Debug, Clone, PartialEq)]
pub struct Compiled {
    pub sql: String,
    pub params: Vec<Param>,
}

/// Compiles an expression for `backend`; its placeholders start at `$first`. Every value
/// of the expression is a bound parameter, never part of the SQL text.
pub fn compile(
    expr: &Expr,
    first: usize,
    now: i64,
    backend: Backend,
) -> std::result::Result<Compiled, String> {
    let mut c = Compiler::new(first, now, backend);
    let sql = c.expr(expr)?;
    Ok(Compiled {
        sql,
        params: c.params,
    })
}

macro_rules! bind_all {
    ($query:expr, $params:expr) => {{
        let mut q = $query;
        for p in $params {
            q = match p {
                Param::Text(s) => q.bind(s.clone()),
                Param::Int(i) => q.bind(*i),
                Param::Float(f) => q.bind(*f),
            };
        }
        q
    }};
}
pub(crate) use bind_all;

/// How many of the tenant's contacts match.
pub async fn count(
    conn: &mut AnyConnection,
    tenant_id: &str,
    expr: &Expr,
    now: i64,
) -> Result<i64> {
    let compiled = compile(expr, 2, now, Backend::of(conn)).map_err(StoreError::Conflict)?;
    let sql = format!(
        "SELECT COUNT(*) FROM contacts c WHERE c.tenant_id = $1 AND {}",
        compiled.sql
    );
    let q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql)).bind(tenant_id);
    Ok(bind_all!(q, &compiled.params).fetch_one(conn).await?)
}

/// A page of the tenant's contacts matching `expr` (all when `None`), newest first,
/// strictly older than the keyset cursor.
pub async fn page(
    conn: &mut AnyConnection,
    tenant_id: &str,
    expr: Option<&Expr>,
    before: Option<(i64, String)>,
    limit: i64,
    now: i64,
) -> Result<Vec<Contact>> {
    let (filter, params) = match expr {
        Some(e) => {
            let compiled = compile(e, 5, now, Backend::of(conn)).map_err(StoreError::Conflict)?;
            (format!("AND {}", compiled.sql), compiled.params)
        }
        None => (String::new(), Vec::new()),
    };
    let (t, id) = before.map_or((None, None), |(t, id)| (Some(t), Some(id)));
    let columns = COLUMNS
        .split(", ")
        .map(|c| format!("c.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT {columns} FROM contacts c WHERE c.tenant_id = $1 \
         AND ($2 IS NULL OR c.created_at < $2 OR (c.created_at = $2 AND c.id < $3)) {filter} \
         ORDER BY c.created_at DESC, c.id DESC LIMIT $4"
    );
    let q = sqlx::query_as::<_, Contact>(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(t)
        .bind(id)
        .bind(limit);
    // $5… are the filter's; the bind order follows the placeholders.
    Ok(bind_all!(q, &params).fetch_all(conn).await?)
}

/// Ids of every matching contact, for bulk operations (ids only, in pages of the caller's size).
pub async fn ids(
    conn: &mut AnyConnection,
    tenant_id: &str,
    expr: &Expr,
    after: Option<&str>,
    limit: i64,
    now: i64,
) -> Result<Vec<String>> {
    let compiled = compile(expr, 4, now, Backend::of(conn)).map_err(StoreError::Conflict)?;
    let sql = format!(
        "SELECT c.id FROM contacts c WHERE c.tenant_id = $1 AND ($2 IS NULL OR c.id > $2) AND {} ORDER BY c.id LIMIT $3",
        compiled.sql
    );
    let q = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id)
        .bind(after)
        .bind(limit);
    Ok(bind_all!(q, &compiled.params).fetch_all(conn).await?)
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Segment {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub expression: String,
    pub created_at: i64,
    pub updated_at: i64,
}

pub async fn insert(
    conn: &mut AnyConnection,
    tenant_id: &str,
    name: &str,
    expression: &str,
    now: i64,
) -> Result<Segment> {
    let s = Segment {
        id: new_id(),
        tenant_id: tenant_id.into(),
        name: name.into(),
        expression: expression.into(),
        created_at: now,
        updated_at: now,
    };
    sqlx::query("INSERT INTO segments (id, tenant_id, name, expression, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)")
        .bind(&s.id)
        .bind(tenant_id)
        .bind(name)
        .bind(expression)
        .bind(now)
        .execute(conn)
        .await
        .map_err(|e| StoreError::unique(e, "a segment with this name exists"))?;
    Ok(s)
}

pub async fn get(conn: &mut AnyConnection, id: &str, scope: Scope<'_>) -> Result<Segment> {
    sqlx::query_as("SELECT id, tenant_id, name, expression, created_at, updated_at FROM segments WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2)")
        .bind(id)
        .bind(scope.tenant())
        .fetch_optional(conn)
        .await?
        .ok_or(StoreError::NotFound)
}

pub async fn list(conn: &mut AnyConnection, scope: Scope<'_>) -> Result<Vec<Segment>> {
    Ok(sqlx::query_as("SELECT id, tenant_id, name, expression, created_at, updated_at FROM segments WHERE ($1 IS NULL OR tenant_id = $1) ORDER BY name")
        .bind(scope.tenant())
        .fetch_all(conn)
        .await?)
}

pub async fn update(conn: &mut AnyConnection, s: &Segment, now: i64) -> Result<()> {
    sqlx::query("UPDATE segments SET name = $1, expression = $2, updated_at = $3 WHERE id = $4")
        .bind(&s.name)
        .bind(&s.expression)
        .bind(now)
        .bind(&s.id)
        .execute(conn)
        .await
        .map_err(|e| StoreError::unique(e, "a segment with this name exists"))?;
    Ok(())
}

pub async fn delete(conn: &mut AnyConnection, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM segments WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn compiles_with_numbered_placeholders() {
        let e: Expr = serde_json::from_value(json!({"and": [{"tag": "TYPE:LAWYER"}, {"not": {"field": "country", "op": "in", "value": ["FR", "BE"]}}]})).unwrap();
        let c = compile(&e, 2, 0, Backend::Sqlite).unwrap();
        assert!(
            c.sql.contains("t.slug = $2") && c.sql.contains("LENGTH($3)"),
            "{}",
            c.sql
        );
        // `not` over `in`: the negation wraps the membership test (not the `not_in`
        // operator, which also keeps the contacts without a country).
        assert!(
            c.sql.contains("(NOT (") && c.sql.contains(" IN ($4, $5)))"),
            "{}",
            c.sql
        );
        assert!(!c.sql.contains("NOT IN"), "{}", c.sql);
        assert_eq!(
            c.params,
            vec![
                Param::Text("type:lawyer".into()),
                Param::Text("type:lawyer/".into()),
                Param::Text("fr".into()),
                Param::Text("be".into())
            ]
        );
    }
}
