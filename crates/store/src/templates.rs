//! E-mail templates per tenant and their kept versions.

use crate::Scope;
use ee_core::ids::new_id;
use sqlx::AnyConnection;

use crate::{Result, StoreError};

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, sqlx::FromRow)]
pub struct Template {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub language: String,
    pub category: Option<String>,
    pub subject: String,
    pub html_content: String,
    pub text_content: Option<String>,
    /// JSON object: declared custom variable → its default (or null).
    pub variables: String,
    pub from_name: Option<String>,
    pub from_email: Option<String>,
    pub reply_to: Option<String>,
    /// The blocks the HTML is rendered from (`ee_core::design`, as JSON); none for
    /// hand-written HTML. Versions kept before it existed read as none.
    #[serde(default)]
    pub design: Option<String>,
    pub version: i64,
    #[sqlx(try_from = "crate::flag::Flag")]
    pub is_active: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, tenant_id, name, language, category, subject, html_content, text_content, \
    variables, from_name, from_email, reply_to, design, version, is_active, created_at, updated_at";

/// The editable content of a template.
#[derive(Debug, Clone)]
pub struct Content<'a> {
    pub name: &'a str,
    pub language: &'a str,
    pub category: Option<&'a str>,
    pub subject: &'a str,
    pub html: &'a str,
    pub text: Option<&'a str>,
    pub variables: &'a str,
    pub from_name: Option<&'a str>,
    pub from_email: Option<&'a str>,
    pub reply_to: Option<&'a str>,
    pub design: Option<&'a str>,
}

const NAME_TAKEN: &str = "this tenant has a template with this name already";

async fn keep_version(
    conn: &mut AnyConnection,
    template: &Template,
    actor: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO email_template_versions (template_id, version, content, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&template.id)
    .bind(template.version)
    .bind(serde_json::to_string(template).unwrap_or_default())
    .bind(actor)
    .bind(template.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn insert(
    conn: &mut AnyConnection,
    tenant_id: &str,
    content: &Content<'_>,
    actor: Option<&str>,
    now: i64,
) -> Result<Template> {
    let id = new_id();
    sqlx::query(
        "INSERT INTO email_templates (id, tenant_id, name, language, category, subject, html_content, \
         text_content, variables, from_name, from_email, reply_to, design, version, is_active, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 1, 1, $14, $14)",
    )
    .bind(&id)
    .bind(tenant_id)
    .bind(content.name)
    .bind(content.language)
    .bind(content.category)
    .bind(content.subject)
    .bind(content.html)
    .bind(content.text)
    .bind(content.variables)
    .bind(content.from_name)
    .bind(content.from_email)
    .bind(content.reply_to)
    .bind(content.design)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(|e| StoreError::unique(e, NAME_TAKEN))?;
    let template = get(conn, &id, Scope::All).await?;
    keep_version(conn, &template, actor).await?;
    Ok(template)
}

pub async fn get(conn: &mut AnyConnection, id: &str, scope: Scope<'_>) -> Result<Template> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM email_templates WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2)"
    )))
    .bind(id)
    .bind(scope.tenant())
    .fetch_optional(conn)
    .await?
    .ok_or(StoreError::NotFound)
}

pub async fn get_by_name(
    conn: &mut AnyConnection,
    tenant_id: &str,
    name: &str,
) -> Result<Template> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM email_templates WHERE tenant_id = $1 AND name = $2"
    )))
    .bind(tenant_id)
    .bind(name)
    .fetch_optional(conn)
    .await?
    .ok_or(StoreError::NotFound)
}

#[derive(Debug, Default)]
pub struct Filter<'a> {
    pub tenant_id: Option<&'a str>,
    pub language: Option<&'a str>,
    pub category: Option<&'a str>,
    /// Active templates only.
    pub active: bool,
}

pub async fn list(conn: &mut AnyConnection, filter: &Filter<'_>) -> Result<Vec<Template>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM email_templates WHERE ($1 IS NULL OR tenant_id = $1) \
         AND ($2 IS NULL OR language = $2) AND ($3 IS NULL OR category = $3) \
         AND ($4 = 0 OR is_active = 1) ORDER BY name, id"
    )))
    .bind(filter.tenant_id)
    .bind(filter.language)
    .bind(filter.category)
    .bind(i64::from(filter.active))
    .fetch_all(conn)
    .await?)
}

/// Saves new content as the next version, keeping the previous ones.
pub async fn update(
    conn: &mut AnyConnection,
    template: &Template,
    content: &Content<'_>,
    active: bool,
    actor: Option<&str>,
    now: i64,
) -> Result<Template> {
    sqlx::query(
        "UPDATE email_templates SET name = $1, language = $2, category = $3, subject = $4, html_content = $5, \
         text_content = $6, variables = $7, from_name = $8, from_email = $9, reply_to = $10, \
         design = $11, version = version + 1, is_active = $12, updated_at = $13 WHERE id = $14",
    )
    .bind(content.name)
    .bind(content.language)
    .bind(content.category)
    .bind(content.subject)
    .bind(content.html)
    .bind(content.text)
    .bind(content.variables)
    .bind(content.from_name)
    .bind(content.from_email)
    .bind(content.reply_to)
    .bind(content.design)
    .bind(i64::from(active))
    .bind(now)
    .bind(&template.id)
    .execute(&mut *conn)
    .await
    .map_err(|e| StoreError::unique(e, NAME_TAKEN))?;
    let updated = get(conn, &template.id, Scope::All).await?;
    keep_version(conn, &updated, actor).await?;
    Ok(updated)
}

/// Deletes a template, unless a campaign that is not over uses it (as its template, a
/// step's or a variant's): its messages are rendered from it when sent.
pub async fn delete(conn: &mut AnyConnection, id: &str) -> Result<()> {
    let user: Option<String> = sqlx::query_scalar(
        "SELECT name FROM campaigns WHERE status NOT IN ('sent', 'cancelled') \
         AND (template_id = $1 OR settings LIKE $2) LIMIT 1",
    )
    .bind(id)
    .bind(format!("%\"{id}\"%"))
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(name) = user {
        return Err(StoreError::Conflict(format!(
            "campaign `{name}` uses this template: cancel it or let it finish first"
        )));
    }
    sqlx::query("DELETE FROM email_templates WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Version {
    pub version: i64,
    pub content: String,
    pub created_by: Option<String>,
    pub created_at: i64,
}

pub async fn versions(conn: &mut AnyConnection, template_id: &str) -> Result<Vec<Version>> {
    Ok(sqlx::query_as(
        "SELECT version, content, created_by, created_at FROM email_template_versions \
         WHERE template_id = $1 ORDER BY version DESC",
    )
    .bind(template_id)
    .fetch_all(conn)
    .await?)
}

/// A template as it was at `version` (each version's content is kept whole).
pub async fn at_version(
    conn: &mut AnyConnection,
    template_id: &str,
    version: i64,
) -> Result<Template> {
    let content: Option<String> = sqlx::query_scalar(
        "SELECT content FROM email_template_versions WHERE template_id = $1 AND version = $2",
    )
    .bind(template_id)
    .bind(version)
    .fetch_optional(conn)
    .await?;
    content
        .and_then(|c| serde_json::from_str(&c).ok())
        .ok_or(StoreError::NotFound)
}
