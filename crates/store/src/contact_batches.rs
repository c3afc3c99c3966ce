//! Contacts read many at a time, for a batch of messages: their rows (a body rendered at
//! send time) or only their metadata (a recipient's own time zone).

use std::collections::HashMap;

use sqlx::AnyConnection;

use crate::Result;
use crate::contacts::{COLUMNS, Contact};

/// The contacts named, by id (an erased contact is absent).
pub async fn get_many(
    conn: &mut AnyConnection,
    ids: &[String],
) -> Result<HashMap<String, Contact>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM contacts WHERE id {}",
        crate::bulk::in_texts(conn, "$1")
    );
    let found: Vec<Contact> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(crate::bulk::encode(ids))
        .fetch_all(&mut *conn)
        .await?;
    Ok(found.into_iter().map(|c| (c.id.clone(), c)).collect())
}

/// Contacts' own time zones and countries, by id (a window in the recipient's zone). A
/// contact whose field is empty but whose custom fields hold `time_zone` (or `timezone`),
/// as before the field existed, has that one.
pub async fn zones_of(
    conn: &mut AnyConnection,
    ids: &[String],
) -> Result<HashMap<String, (Option<String>, Option<String>)>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = format!(
        "SELECT id, time_zone, country, metadata FROM contacts WHERE id {}",
        crate::bulk::in_texts(conn, "$1")
    );
    let found = sqlx::query_as::<_, (String, Option<String>, Option<String>, String)>(
        sqlx::AssertSqlSafe(sql),
    )
    .bind(crate::bulk::encode(ids))
    .fetch_all(&mut *conn)
    .await?;
    Ok(found
        .into_iter()
        .map(|(id, zone, country, metadata)| {
            let zone = zone.or_else(|| {
                let custom: serde_json::Value = serde_json::from_str(&metadata).ok()?;
                ["time_zone", "timezone"]
                    .iter()
                    .find_map(|k| custom.get(k)?.as_str().map(str::to_owned))
            });
            (id, (zone, country))
        })
        .collect())
}
