//! Contacts: dedupe on the normalised address per tenant, merge on re-ingest (new values
//! fill gaps, a source never wipes a field, each value remembers its source), tags and
//! the event timeline. Tags are `contact_tags`'s (re-exported here).

use crate::Scope;
use std::collections::{BTreeMap, HashMap};

use ee_core::contacts::{ContactStatus, Verdict};
use ee_core::ids::new_id;
use ee_core::tags::Tag;
use serde_json::{Map, Value};
use sqlx::AnyConnection;

pub use crate::contact_tags::{
    TagRow, ensure_tag, list_tags, tag_contact, tag_many, tags_of, untag_many,
};
use crate::{Result, StoreError, bulk};

/// The mergeable fields, in column order.
pub const FIELDS: [&str; 10] = [
    "first_name",
    "last_name",
    "phone",
    "language",
    "country",
    "address",
    "city",
    "category",
    "company",
    "time_zone",
];

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Contact {
    pub id: String,
    pub tenant_id: String,
    pub source_id: Option<String>,
    pub email: String,
    pub email_hash: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub language: Option<String>,
    /// The language was inferred from the country at ingest, not given.
    #[sqlx(try_from = "crate::flag::Flag")]
    pub language_inferred: bool,
    pub country: Option<String>,
    pub address: Option<String>,
    pub city: Option<String>,
    pub category: Option<String>,
    pub company: Option<String>,
    /// An IANA zone (`Europe/Paris`), checked when written.
    pub time_zone: Option<String>,
    #[sqlx(try_from = "String")]
    pub status: ContactStatus,
    pub metadata: String,
    pub field_sources: String,
    #[sqlx(try_from = "String")]
    pub validation_status: Verdict,
    pub validation_confidence: Option<f64>,
    pub validation_reasons: String,
    pub validated_at: Option<i64>,
    pub engaged_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

pub const COLUMNS: &str = "id, tenant_id, source_id, email, email_hash, first_name, last_name, phone, language, \
    language_inferred, country, address, city, category, company, time_zone, status, metadata, field_sources, validation_status, \
    validation_confidence, validation_reasons, validated_at, engaged_at, created_at, updated_at";

impl Contact {
    pub fn field(&self, name: &str) -> Option<&str> {
        match name {
            "first_name" => self.first_name.as_deref(),
            "last_name" => self.last_name.as_deref(),
            "phone" => self.phone.as_deref(),
            "language" => self.language.as_deref(),
            "country" => self.country.as_deref(),
            "address" => self.address.as_deref(),
            "city" => self.city.as_deref(),
            "category" => self.category.as_deref(),
            "company" => self.company.as_deref(),
            "time_zone" => self.time_zone.as_deref(),
            _ => None,
        }
    }

    fn set_field(&mut self, name: &str, value: String) {
        let slot = match name {
            "first_name" => &mut self.first_name,
            "last_name" => &mut self.last_name,
            "phone" => &mut self.phone,
            "language" => &mut self.language,
            "country" => &mut self.country,
            "address" => &mut self.address,
            "city" => &mut self.city,
            "category" => &mut self.category,
            "company" => &mut self.company,
            "time_zone" => &mut self.time_zone,
            _ => return,
        };
        *slot = Some(value);
    }
}

/// A contact as a source sends it, already normalised and checked.
#[derive(Debug, Clone, Default)]
pub struct Incoming {
    pub email: String,
    pub email_hash: String,
    /// Values of FIELDS, empty ones left out.
    pub fields: BTreeMap<&'static str, String>,
    /// The language of `fields` was inferred from the country, not given.
    pub language_inferred: bool,
    /// Custom fields.
    pub metadata: Map<String, Value>,
    pub tags: Vec<Tag>,
    /// The verdict of the checks that need no network (`unknown` until MX is known,
    /// `invalid` for a disposable domain), and its reasons as a JSON array.
    pub validation_status: String,
    pub validation_reasons: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upserted {
    Created(String),
    /// Some gap was filled or a tag added.
    Updated(String),
    /// Nothing new.
    Duplicate(String),
}

impl Upserted {
    pub fn id(&self) -> &str {
        match self {
            Upserted::Created(id) | Upserted::Updated(id) | Upserted::Duplicate(id) => id,
        }
    }
}

pub async fn get(conn: &mut AnyConnection, id: &str, scope: Scope<'_>) -> Result<Contact> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM contacts WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2)"
    )))
    .bind(id)
    .bind(scope.tenant())
    .fetch_optional(conn)
    .await?
    .ok_or(StoreError::NotFound)
}

pub async fn get_by_email(
    conn: &mut AnyConnection,
    tenant_id: &str,
    email: &str,
) -> Result<Option<Contact>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM contacts WHERE tenant_id = $1 AND email = $2"
    )))
    .bind(tenant_id)
    .bind(email)
    .fetch_optional(conn)
    .await?)
}

/// Creates the contact or merges into the existing one; `source` names the data source
/// (its id) for the provenance of each value.
pub async fn upsert(
    conn: &mut AnyConnection,
    tenant_id: &str,
    source: Option<&str>,
    source_label: &str,
    incoming: &Incoming,
    tag_ids: &[String],
    now: i64,
) -> Result<Upserted> {
    let outcome = match get_by_email(&mut *conn, tenant_id, &incoming.email).await? {
        None => {
            let id = new_id();
            let provenance: Map<String, Value> = incoming
                .fields
                .keys()
                .map(|k| ((*k).to_owned(), Value::String(source_label.to_owned())))
                .collect();
            let f = |name: &str| incoming.fields.get(name).cloned();
            let inserted = sqlx::query(
                "INSERT INTO contacts (id, tenant_id, source_id, email, email_hash, first_name, last_name, phone, language, \
                 country, address, city, category, company, status, metadata, field_sources, created_at, updated_at, \
                 validation_status, validation_reasons, time_zone, language_inferred) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'active', $15, $16, $17, $17, $18, $19, $20, $21) \
                 ON CONFLICT (tenant_id, email) DO NOTHING",
            )
            .bind(&id)
            .bind(tenant_id)
            .bind(source)
            .bind(&incoming.email)
            .bind(&incoming.email_hash)
            .bind(f("first_name"))
            .bind(f("last_name"))
            .bind(f("phone"))
            .bind(f("language"))
            .bind(f("country"))
            .bind(f("address"))
            .bind(f("city"))
            .bind(f("category"))
            .bind(f("company"))
            .bind(Value::Object(incoming.metadata.clone()).to_string())
            .bind(Value::Object(provenance).to_string())
            .bind(now)
            .bind(&incoming.validation_status)
            .bind(&incoming.validation_reasons)
            .bind(f("time_zone"))
            .bind(i64::from(incoming.language_inferred && f("language").is_some()))
            .execute(&mut *conn)
            .await?;
            if inserted.rows_affected() == 0 {
                // Created meanwhile by a concurrent ingest: merge into it.
                return Box::pin(upsert(
                    conn,
                    tenant_id,
                    source,
                    source_label,
                    incoming,
                    tag_ids,
                    now,
                ))
                .await;
            }
            add_event(
                &mut *conn,
                tenant_id,
                &id,
                "IMPORTED",
                None,
                &serde_json::json!({"source": source_label}),
                now,
            )
            .await?;
            Upserted::Created(id)
        }
        Some(mut existing) => {
            let mut provenance: Map<String, Value> =
                serde_json::from_str(&existing.field_sources).unwrap_or_default();
            let mut metadata: Map<String, Value> =
                serde_json::from_str(&existing.metadata).unwrap_or_default();
            let mut changed = false;
            for (name, value) in &incoming.fields {
                let empty = existing.field(name).is_none_or(str::is_empty);
                // A given language replaces one inferred from the country: a guess is no
                // value a source gave.
                let replaces_guess = *name == "language"
                    && existing.language_inferred
                    && !incoming.language_inferred;
                if !(empty || replaces_guess) {
                    continue;
                }
                if *name == "language" {
                    existing.language_inferred = incoming.language_inferred;
                }
                existing.set_field(name, value.clone());
                provenance.insert((*name).to_owned(), Value::String(source_label.to_owned()));
                changed = true;
            }
            for (key, value) in &incoming.metadata {
                if !metadata.contains_key(key) && !value.is_null() {
                    metadata.insert(key.clone(), value.clone());
                    changed = true;
                }
            }
            if changed {
                sqlx::query(
                    "UPDATE contacts SET first_name = $1, last_name = $2, phone = $3, language = $4, country = $5, \
                     address = $6, city = $7, category = $8, company = $9, metadata = $10, field_sources = $11, \
                     updated_at = $12, time_zone = $14, language_inferred = $15 WHERE id = $13",
                )
                .bind(&existing.first_name)
                .bind(&existing.last_name)
                .bind(&existing.phone)
                .bind(&existing.language)
                .bind(&existing.country)
                .bind(&existing.address)
                .bind(&existing.city)
                .bind(&existing.category)
                .bind(&existing.company)
                .bind(Value::Object(metadata).to_string())
                .bind(Value::Object(provenance).to_string())
                .bind(now)
                .bind(&existing.id)
                .bind(&existing.time_zone)
                .bind(i64::from(existing.language_inferred))
                .execute(&mut *conn)
                .await?;
                Upserted::Updated(existing.id)
            } else {
                Upserted::Duplicate(existing.id)
            }
        }
    };
    let tagged = tag_contact(conn, outcome.id(), tag_ids, now).await?;
    Ok(match outcome {
        Upserted::Duplicate(id) if tagged > 0 => Upserted::Updated(id),
        other => other,
    })
}

pub async fn add_event(
    conn: &mut AnyConnection,
    tenant_id: &str,
    contact_id: &str,
    event_type: &str,
    campaign_id: Option<&str>,
    metadata: &Value,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO contact_events (id, tenant_id, contact_id, event_type, campaign_id, metadata, occurred_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(new_id())
    .bind(tenant_id)
    .bind(contact_id)
    .bind(event_type)
    .bind(campaign_id)
    .bind(metadata.to_string())
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Event {
    pub id: String,
    pub event_type: String,
    pub campaign_id: Option<String>,
    pub metadata: String,
    pub occurred_at: i64,
}

/// Events of a contact, newest first, after a keyset cursor.
pub async fn events(
    conn: &mut AnyConnection,
    contact_id: &str,
    event_type: Option<&str>,
    before: Option<(i64, String)>,
    limit: i64,
) -> Result<Vec<Event>> {
    let (t, id) = before.map_or((None, None), |(t, id)| (Some(t), Some(id)));
    Ok(sqlx::query_as(
        "SELECT id, event_type, campaign_id, metadata, occurred_at FROM contact_events WHERE contact_id = $1 \
         AND ($2 IS NULL OR event_type = $2) AND ($3 IS NULL OR occurred_at < $3 OR (occurred_at = $3 AND id < $4)) \
         ORDER BY occurred_at DESC, id DESC LIMIT $5",
    )
    .bind(contact_id)
    .bind(event_type)
    .bind(t)
    .bind(id)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Writes a validation result.
pub async fn set_validation(
    conn: &mut AnyConnection,
    id: &str,
    status: &str,
    confidence: f64,
    reasons: &Value,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE contacts SET validation_status = $1, validation_confidence = $2, validation_reasons = $3, validated_at = $4, \
         updated_at = $4 WHERE id = $5",
    )
    .bind(status)
    .bind(confidence)
    .bind(reasons.to_string())
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn set_status(
    conn: &mut AnyConnection,
    id: &str,
    status: ContactStatus,
    now: i64,
) -> Result<()> {
    sqlx::query("UPDATE contacts SET status = $1, updated_at = $2 WHERE id = $3")
        .bind(status.as_str())
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes a contact with its tags, events and campaign ledger rows (GDPR erasure). The
/// ledger has no foreign key (its fan-out would check one per row): its rows are deleted
/// here, one primary-key look-up per campaign of the contact's tenant.
pub async fn erase(conn: &mut AnyConnection, id: &str) -> Result<()> {
    sqlx::query(
        "DELETE FROM campaign_recipients WHERE contact_id = $1 AND campaign_id IN \
         (SELECT k.id FROM campaigns k JOIN contacts c ON c.tenant_id = k.tenant_id WHERE c.id = $1)",
    )
    .bind(id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM contacts WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// A new contact for `insert_many`.
pub struct NewContact<'a> {
    pub id: String,
    pub incoming: &'a Incoming,
}

/// Inserts new contacts with their IMPORTED events, `bulk::ROWS` per statement.
/// Returns the ids of those inserted; an address the tenant has already is skipped
/// (the caller merges it).
pub async fn insert_many(
    conn: &mut AnyConnection,
    tenant_id: &str,
    source: Option<&str>,
    source_label: &str,
    rows: &[NewContact<'_>],
    now: i64,
) -> Result<std::collections::HashSet<String>> {
    if rows.is_empty() {
        return Ok(std::collections::HashSet::new());
    }
    // Every field of a new contact came from this source: rows with the same fields share
    // one provenance document (a CSV's rows mostly do).
    let mut provenance_by_fields: HashMap<Vec<&str>, String> = HashMap::new();
    let mut provenance_for = |incoming: &Incoming| -> String {
        let names: Vec<&str> = incoming.fields.keys().copied().collect();
        provenance_by_fields
            .entry(names)
            .or_insert_with_key(|names| {
                let map: Map<String, Value> = names
                    .iter()
                    .map(|k| ((*k).to_owned(), Value::String(source_label.to_owned())))
                    .collect();
                Value::Object(map).to_string()
            })
            .clone()
    };
    // Each row: id, email, email_hash, the ten FIELDS, metadata, field_sources,
    // validation_status, validation_reasons, whether the language was inferred ("1");
    // borrowed, not copied (a chunk is large).
    let documents: Vec<(String, String)> = rows
        .iter()
        .map(|row| {
            let metadata = if row.incoming.metadata.is_empty() {
                "{}".to_owned()
            } else {
                serde_json::to_string(&row.incoming.metadata).unwrap_or_else(|_| "{}".into())
            };
            (metadata, provenance_for(row.incoming))
        })
        .collect();
    let encoded: Vec<Vec<Option<&str>>> = rows
        .iter()
        .zip(&documents)
        .map(|(row, (metadata, provenance))| {
            let incoming = row.incoming;
            let mut values = Vec::with_capacity(3 + FIELDS.len() + 5);
            values.push(Some(row.id.as_str()));
            values.push(Some(incoming.email.as_str()));
            values.push(Some(incoming.email_hash.as_str()));
            values.extend(
                FIELDS
                    .iter()
                    .map(|f| incoming.fields.get(f).map(String::as_str)),
            );
            values.push(Some(metadata.as_str()));
            values.push(Some(provenance.as_str()));
            values.push(Some(incoming.validation_status.as_str()));
            values.push(Some(incoming.validation_reasons.as_str()));
            let inferred = incoming.language_inferred && incoming.fields.contains_key("language");
            values.push(Some(if inferred { "1" } else { "0" }));
            values
        })
        .collect();
    let field_values = (0..FIELDS.len())
        .map(|i| format!("value ->> {}", 3 + i))
        .collect::<Vec<_>>()
        .join(", ");
    let after = 3 + FIELDS.len();
    // `WHERE true`: SQLite would read `ON CONFLICT` after a bare `FROM` as a join's `ON`.
    let sql = format!(
        "INSERT INTO contacts (id, tenant_id, source_id, email, email_hash, {fields}, status, metadata, \
         field_sources, validation_status, validation_reasons, language_inferred, created_at, updated_at) \
         SELECT value ->> 0, $2, $3, value ->> 1, value ->> 2, {field_values}, 'active', value ->> {m}, \
         value ->> {p}, value ->> {s}, value ->> {r}, CASE value ->> {i} WHEN '1' THEN 1 ELSE 0 END, $4, $4 \
         FROM {from} WHERE true \
         ON CONFLICT (tenant_id, email) DO NOTHING",
        fields = FIELDS.join(", "),
        m = after,
        p = after + 1,
        s = after + 2,
        r = after + 3,
        i = after + 4,
        from = bulk::rows(conn, "$1"),
    );
    let mut mine = std::collections::HashSet::with_capacity(rows.len());
    let present = format!(
        "SELECT id FROM contacts WHERE id {}",
        bulk::in_texts(conn, "$1")
    );
    for (group, group_rows) in encoded.chunks(bulk::ROWS).zip(rows.chunks(bulk::ROWS)) {
        let inserted = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(bulk::encode(group))
            .bind(tenant_id.to_owned())
            .bind(source.map(str::to_owned))
            .bind(now)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        let ids = group_rows.iter().map(|row| row.id.clone());
        if inserted == group_rows.len() as u64 {
            // The usual case, all new: no id per row to send back and collect.
            mine.extend(ids);
        } else {
            // Some addresses existed: the rows that went in are those with our fresh ids.
            let ids: Vec<String> = ids.collect();
            mine.extend(
                sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(present.as_str()))
                    .bind(bulk::encode(&ids))
                    .fetch_all(&mut *conn)
                    .await?,
            );
        }
    }

    let events: Vec<[String; 2]> = mine.iter().map(|id| [new_id(), id.clone()]).collect();
    let sql = format!(
        "INSERT INTO contact_events (id, tenant_id, contact_id, event_type, metadata, occurred_at) \
         SELECT value ->> 0, $2, value ->> 1, 'IMPORTED', $3, $4 FROM {}",
        bulk::rows(conn, "$1")
    );
    let detail = serde_json::json!({ "source": source_label }).to_string();
    for group in events.chunks(bulk::ROWS) {
        sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(bulk::encode(group))
            .bind(tenant_id.to_owned())
            .bind(detail.clone())
            .bind(now)
            .execute(&mut *conn)
            .await?;
    }
    Ok(mine)
}

/// Records that a contact engaged (opened, clicked) now: the segments' engagement date.
pub async fn touch_engagement(conn: &mut AnyConnection, id: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE contacts SET engaged_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}
