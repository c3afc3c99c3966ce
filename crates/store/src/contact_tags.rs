//! Contacts' tags: a tenant's tag tree (a tag created with its parents), the tags of a
//! contact, and tags added or removed in bulk.

use ee_core::ids::new_id;
use ee_core::tags::Tag;
use sqlx::AnyConnection;

use crate::{Result, bulk};

/// Adds tags to a contact; returns how many were new.
pub async fn tag_contact(
    conn: &mut AnyConnection,
    contact_id: &str,
    tag_ids: &[String],
    now: i64,
) -> Result<u64> {
    let mut added = 0;
    for tag_id in tag_ids {
        let done = sqlx::query("INSERT INTO contact_tags (contact_id, tag_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(contact_id)
            .bind(tag_id)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        added += done.rows_affected();
    }
    Ok(added)
}

/// The id of a tag, created (with its parents) if missing.
pub async fn ensure_tag(
    conn: &mut AnyConnection,
    tenant_id: &str,
    tag: &Tag,
    now: i64,
) -> Result<String> {
    let slug = tag.slug();
    if let Some(id) =
        sqlx::query_scalar::<_, String>("SELECT id FROM tags WHERE tenant_id = $1 AND slug = $2")
            .bind(tenant_id)
            .bind(&slug)
            .fetch_optional(&mut *conn)
            .await?
    {
        return Ok(id);
    }
    let parent_id = match tag.parent() {
        Some(parent) => Some(Box::pin(ensure_tag(&mut *conn, tenant_id, &parent, now)).await?),
        None => None,
    };
    let id = new_id();
    sqlx::query(
        "INSERT INTO tags (id, tenant_id, slug, name, category, parent_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (tenant_id, slug) DO NOTHING",
    )
    .bind(&id)
    .bind(tenant_id)
    .bind(&slug)
    .bind(tag.name())
    .bind(tag.category_or_free())
    .bind(parent_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(
        sqlx::query_scalar("SELECT id FROM tags WHERE tenant_id = $1 AND slug = $2")
            .bind(tenant_id)
            .bind(&slug)
            .fetch_one(conn)
            .await?,
    )
}

pub async fn tags_of(conn: &mut AnyConnection, contact_id: &str) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT t.slug FROM contact_tags ct JOIN tags t ON t.id = ct.tag_id WHERE ct.contact_id = $1 ORDER BY t.slug",
    )
    .bind(contact_id)
    .fetch_all(conn)
    .await?)
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct TagRow {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub category: String,
    pub parent_id: Option<String>,
    pub created_at: i64,
}

pub async fn list_tags(conn: &mut AnyConnection, tenant_id: &str) -> Result<Vec<TagRow>> {
    Ok(sqlx::query_as("SELECT id, slug, name, category, parent_id, created_at FROM tags WHERE tenant_id = $1 ORDER BY slug")
        .bind(tenant_id)
        .fetch_all(conn)
        .await?)
}

/// Adds (contact, tag) pairs, `bulk::ROWS` per statement; existing pairs are left alone.
/// The number of pairs added.
pub async fn tag_many(
    conn: &mut AnyConnection,
    pairs: &[(String, String)],
    now: i64,
) -> Result<u64> {
    let mut added = 0;
    if pairs.is_empty() {
        return Ok(added);
    }
    let sql = format!(
        "INSERT INTO contact_tags (contact_id, tag_id, created_at) \
         SELECT value ->> 0, value ->> 1, $2 FROM {} WHERE true ON CONFLICT DO NOTHING",
        bulk::rows(conn, "$1")
    );
    for group in pairs.chunks(bulk::ROWS) {
        added += sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(bulk::encode(group))
            .bind(now)
            .execute(&mut *conn)
            .await?
            .rows_affected();
    }
    Ok(added)
}

/// Removes a tag and its descendants (slug `a/b` under `a`) from the given contacts of a
/// tenant, `bulk::ROWS` contacts per statement; the number of links removed.
pub async fn untag_many(
    conn: &mut AnyConnection,
    tenant_id: &str,
    contact_ids: &[String],
    slug: &str,
) -> Result<u64> {
    let sql = format!(
        "DELETE FROM contact_tags WHERE contact_id {} AND tag_id IN (SELECT id FROM tags \
         WHERE tenant_id = $2 AND (slug = $3 OR SUBSTR(slug, 1, LENGTH($4)) = $4))",
        bulk::in_texts(conn, "$1")
    );
    let mut removed = 0;
    for group in contact_ids.chunks(bulk::ROWS) {
        removed += sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(bulk::encode(group))
            .bind(tenant_id)
            .bind(slug)
            .bind(format!("{slug}/"))
            .execute(&mut *conn)
            .await?
            .rows_affected();
    }
    Ok(removed)
}
