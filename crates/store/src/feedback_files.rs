//! The accounting-file follower's place in each file it follows.

use sqlx::AnyConnection;

use crate::Result;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FilePlace {
    pub path: String,
    pub inode: i64,
    pub read_to: i64,
    /// The header line's columns, comma-separated.
    pub header: Option<String>,
    /// A digest of the file's first bytes read (up to 1 KiB).
    pub fingerprint: Option<String>,
    pub updated_at: i64,
}

pub async fn get(conn: &mut AnyConnection, path: &str) -> Result<Option<FilePlace>> {
    Ok(sqlx::query_as(
        "SELECT path, inode, read_to, header, fingerprint, updated_at FROM feedback_files WHERE path = $1",
    )
    .bind(path)
    .fetch_optional(conn)
    .await?)
}

pub async fn save(conn: &mut AnyConnection, place: &FilePlace) -> Result<()> {
    sqlx::query(
        "INSERT INTO feedback_files (path, inode, read_to, header, fingerprint, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (path) DO UPDATE SET inode = excluded.inode, \
         read_to = excluded.read_to, header = excluded.header, fingerprint = excluded.fingerprint, \
         updated_at = excluded.updated_at",
    )
    .bind(&place.path)
    .bind(place.inode)
    .bind(place.read_to)
    .bind(&place.header)
    .bind(&place.fingerprint)
    .bind(place.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}
