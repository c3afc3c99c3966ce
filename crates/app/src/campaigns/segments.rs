//! Saved segments (a name and an expression over tags and fields): created, changed and
//! deleted with their audit entry.

use ee_core::ValidationErrors;
use ee_core::segment::Expr;
use ee_core::timefmt::to_rfc3339;
use ee_store::Scope;
use ee_store::contacts::Contact;
use ee_store::segments;
pub use ee_store::segments::Segment;
use ee_store::{AnyConnection, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::AppError;
use crate::read::Read;
use crate::write::{Deletable, Write};

#[derive(Debug, Serialize, ToSchema)]
pub struct SegmentOut {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    #[schema(value_type = Object)]
    pub expression: Value,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Segment> for SegmentOut {
    fn from(s: Segment) -> Self {
        Self {
            id: s.id,
            tenant_id: s.tenant_id,
            name: s.name,
            expression: serde_json::from_str(&s.expression).unwrap_or_default(),
            created_at: to_rfc3339(s.created_at),
            updated_at: to_rfc3339(s.updated_at),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentBody {
    pub name: Option<String>,
    /// `{"and"|"or": [...]}`, `{"not": …}`, `{"tag": "TYPE:LAWYER"}`,
    /// `{"field": "country", "op": "eq", "value": "FR"}`; fields language, country, status,
    /// source, validation, created_at, engaged_at, email, category, city;
    /// `{"custom": "profession", "op": "eq", "value": "lawyer"}` (a custom field; numbers
    /// with gt, gte, lt, lte); `{"engagement": "opened"|"clicked"|"received"|"soft_bounced",
    /// "days"?: 1-3650, "campaign"?: id, "at_least"?: 1-1000}`.
    #[schema(value_type = Option<Object>)]
    pub expression: Option<Value>,
    #[serde(alias = "tenant")]
    pub tenant_id: Option<String>,
}

/// A segment expression, read and checked (422 on `expression` otherwise).
pub fn parse_expr(value: &Value, now: i64) -> Result<Expr, AppError> {
    parse_expr_in(value, "expression", now)
}

/// `parse_expr` for an expression given in `field`.
pub fn parse_expr_in(value: &Value, field: &str, now: i64) -> Result<Expr, AppError> {
    let expr: Expr = serde_json::from_value(value.clone()).map_err(|_| {
        ValidationErrors::single(
            field,
            "is not a segment expression (and, or, not, tag, field)",
        )
    })?;
    ee_core::segment::check(&expr, now)
        .map_err(|e| ValidationErrors::single(field, e.to_string()))?;
    Ok(expr)
}

/// Checks that every campaign `expr` names is one of the tenant's (422 on `field`
/// otherwise: another tenant's campaign is unknown, as a missing one).
pub async fn check_campaigns(
    conn: &mut AnyConnection,
    tenant_id: &str,
    expr: &Expr,
    field: &str,
) -> Result<(), AppError> {
    for id in ee_core::segment::campaigns(expr) {
        match ee_store::campaigns::get(conn, id, Scope::Tenant(tenant_id)).await {
            Ok(_) => {}
            Err(StoreError::NotFound) => {
                return Err(crate::input::invalid(
                    field,
                    format!("campaign `{id}` is not one of the tenant's campaigns"),
                ));
            }
            Err(other) => return Err(other.into()),
        }
    }
    Ok(())
}

/// Saves a segment for `tenant_id`.
pub async fn create(
    w: &mut Write,
    tenant_id: &str,
    input: &SegmentBody,
) -> Result<SegmentOut, AppError> {
    let name = input
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ValidationErrors::single("name", "is required"))?;
    let expression = input
        .expression
        .as_ref()
        .ok_or_else(|| ValidationErrors::single("expression", "is required"))?;
    let expr = parse_expr(expression, w.now)?;
    check_campaigns(&mut w.tx, tenant_id, &expr, "expression").await?;
    let s = segments::insert(&mut w.tx, tenant_id, name, &expression.to_string(), w.now).await?;
    let out = SegmentOut::from(s);
    w.created("segment.create", &out).await?;
    Ok(out)
}

/// Renames a segment or changes its expression.
pub async fn update(w: &mut Write, id: &str, input: &SegmentBody) -> Result<SegmentOut, AppError> {
    if input.tenant_id.is_some() {
        return Err(ValidationErrors::single(
            "tenant_id",
            "a segment cannot move to another tenant",
        )
        .into());
    }
    let mut s: Segment = w.find(id).await?;
    let before = SegmentOut::from(s.clone());
    if let Some(name) = input.name.as_deref().map(str::trim) {
        if name.is_empty() {
            return Err(ValidationErrors::single("name", "must not be blank").into());
        }
        s.name = name.to_owned();
    }
    if let Some(expression) = &input.expression {
        let expr = parse_expr(expression, w.now)?;
        check_campaigns(&mut w.tx, &s.tenant_id, &expr, "expression").await?;
        s.expression = expression.to_string();
    }
    segments::update(&mut w.tx, &s, w.now).await?;
    let out = SegmentOut::from(s);
    w.changed("segment.update", &before, &out).await?;
    Ok(out)
}

impl Deletable for Segment {
    const DELETED: &'static str = "segment.delete";
    type Out = SegmentOut;

    async fn delete(conn: &mut AnyConnection, id: &str) -> Result<(), StoreError> {
        segments::delete(conn, id).await
    }
}

crate::write::audited!(SegmentOut, "segment");

/// The saved segments the caller may see.
pub async fn list(read: &mut Read) -> Result<Vec<Segment>, AppError> {
    let (conn, scope) = read.parts();
    Ok(segments::list(conn, scope).await?)
}

/// A segment of one tenant (a contacts filter naming it), or `NotFound`.
pub async fn of_tenant(read: &mut Read, tenant_id: &str, id: &str) -> Result<Segment, AppError> {
    segments::get(read.conn(), id, Scope::Tenant(tenant_id))
        .await
        .map_err(AppError::from_store("segment"))
}

/// An expression the database cannot run is invalid input (a name already taken stays a
/// conflict).
fn expression_error(e: StoreError) -> AppError {
    match e {
        StoreError::Conflict(m) if !m.contains("exists") => crate::input::invalid("expression", m),
        other => other.into(),
    }
}

/// How many of a tenant's contacts an expression matches now (counted in the database);
/// a campaign it names must be the tenant's.
pub async fn count(
    read: &mut Read,
    tenant_id: &str,
    expr: &Expr,
    now: i64,
) -> Result<i64, AppError> {
    check_campaigns(read.conn(), tenant_id, expr, "expression").await?;
    segments::count(read.conn(), tenant_id, expr, now)
        .await
        .map_err(expression_error)
}

/// A page of the contacts an expression matches, newest first, strictly before the
/// key-set cursor.
pub async fn contacts(
    read: &mut Read,
    tenant_id: &str,
    expr: &Expr,
    before: Option<(i64, String)>,
    limit: i64,
    now: i64,
) -> Result<Vec<Contact>, AppError> {
    check_campaigns(read.conn(), tenant_id, expr, "expression").await?;
    segments::page(read.conn(), tenant_id, Some(expr), before, limit, now)
        .await
        .map_err(expression_error)
}
