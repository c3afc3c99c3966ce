//! Contact ingestion, shared by the API, webhooks and CSV imports.
pub mod custom_events;
pub mod enrichment;
pub mod privacy;
pub mod suppressions;
pub mod tagging;
pub mod validation;
pub mod view;

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::AppError;
use ee_core::contact_conditions::{self, Facts};
use ee_core::contacts::{self as rules, ExtraLists, Folding, Verdict};
pub use ee_store::contacts::Contact;
use ee_store::contacts::{self as store, Incoming, Upserted};
use ee_store::jobs::{self as queue, NewJob};
use ee_store::sources::{self, Source};
use ee_store::{AnyConnection, Db, StoreError, suppressions as suppression_rows, tenants};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

pub const VALIDATE: &str = "contacts.validate";

/// A contact as received, before normalisation.
#[derive(Debug, Clone, Default)]
pub struct RawContact {
    pub email: String,
    /// Values keyed by our field names (see `ee_store::contacts::FIELDS`).
    pub fields: BTreeMap<&'static str, String>,
    pub tags: Vec<String>,
    pub metadata: Map<String, Value>,
    /// Set by enrichment: the language was inferred from the country, not given.
    pub language_inferred: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ItemStatus {
    Created,
    Updated,
    Duplicate,
    Rejected,
}

/// What became of one contact of a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ItemResult {
    pub index: usize,
    pub email: String,
    pub status: ItemStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Counts {
    pub created: u64,
    pub updated: u64,
    pub duplicate: u64,
    pub rejected: u64,
}

impl Counts {
    pub fn add(&mut self, status: ItemStatus) {
        match status {
            ItemStatus::Created => self.created += 1,
            ItemStatus::Updated => self.updated += 1,
            ItemStatus::Duplicate => self.duplicate += 1,
            ItemStatus::Rejected => self.rejected += 1,
        }
    }
}

/// The per-tenant rules of an ingestion, loaded once per request.
#[derive(Debug, Clone)]
pub struct TenantRules {
    pub tenant_id: String,
    pub folding: Folding,
    pub lists: ExtraLists,
    pub smtp_probe: bool,
}

pub async fn tenant_rules(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<TenantRules, StoreError> {
    let tenant = tenants::get(&mut *conn, tenant_id).await?;
    let contacts = crate::access::tenant_settings::TenantSettings::of(&tenant).contacts;
    Ok(TenantRules {
        tenant_id: tenant_id.to_owned(),
        folding: contacts.folding,
        lists: sources::extra_lists(conn, tenant_id).await?,
        smtp_probe: contacts.smtp_probe,
    })
}

/// Routing: the first rule (by priority) whose every condition holds names the tenant.
pub fn route(
    rules: &[sources::RoutingRule],
    contact: &RawContact,
    source_slug: &str,
) -> Option<String> {
    let field = |name| contact.fields.get(name).map(String::as_str);
    let facts = Facts {
        category: field("category"),
        country: field("country"),
        language: field("language"),
        source: source_slug,
        tag_slugs: Facts::slugs(&contact.tags),
    };
    rules
        .iter()
        .find(|rule| {
            serde_json::from_str::<Value>(&rule.conditions)
                .ok()
                .and_then(|c| c.as_object().cloned())
                .is_some_and(|c| !c.is_empty() && contact_conditions::hold(&c, &facts))
        })
        .map(|rule| rule.tenant_id.clone())
}

/// Where contacts go and who sent them.
pub struct Destination<'a> {
    /// The tenant of the credential (or named by an admin).
    pub tenant_id: &'a str,
    pub source: Option<&'a Source>,
    /// What each field remembers as its source when no data source is named: `api`, or
    /// `csv` for an upload.
    pub channel: &'a str,
}

/// An ingestion made as one audited change (an API batch, a webhook): its audit entry,
/// the answer kept for replays of its batch id and its follow-up jobs are written in the
/// transaction of its last chunk, so a batch that fails leaves none of them behind.
pub struct BatchRecord<'a> {
    pub caller: &'a crate::audit::Caller,
    /// The client's batch id: a batch sent again with it gets the kept answer.
    pub batch_id: Option<&'a str>,
    /// The answer kept for replays, built from the results and counts.
    pub answer: &'a (dyn Fn(&[ItemResult], &Counts) -> String + Sync),
}

/// The key batches are kept under: the source's id, or `api`.
pub fn batch_source_key(source: Option<&Source>) -> String {
    source.map_or_else(|| "api".to_owned(), |s| s.id.clone())
}

/// The answer kept for a batch already ingested from this source (`batch_id`), if any.
pub async fn batch_answer(
    read: &mut crate::read::Read,
    tenant_id: &str,
    source: Option<&Source>,
    batch_id: &str,
) -> Result<Option<String>, crate::AppError> {
    let key = batch_source_key(source);
    Ok(sources::batch_response(read.conn(), tenant_id, &key, batch_id).await?)
}

/// Contacts per transaction of an ingestion: larger ones write each index page touched
/// fewer times (SQLite copies every page a transaction dirties into its WAL at commit).
const TX_ROWS: usize = 10_000;

/// Ingests contacts: normalise, refuse what is invalid or suppressed, dedupe, merge,
/// tag; new contacts are queued for validation. Works in chunks of `TX_ROWS` per
/// transaction, with set-based statements for what is new (the bulk of an import).
pub async fn ingest(
    db: &Db,
    dest: Destination<'_>,
    mut contacts: Vec<RawContact>,
    now: i64,
    record: Option<BatchRecord<'_>>,
) -> Result<(Vec<ItemResult>, Counts), AppError> {
    let mut conn = db.pool().acquire().await?;
    let source_label = dest
        .source
        .map_or_else(|| dest.channel.to_owned(), |s| s.slug.clone());
    let source_id = dest.source.map(|s| s.id.clone());
    let routed = dest.source.is_some_and(|s| {
        serde_json::from_str::<Value>(&s.config)
            .ok()
            .and_then(|c| c["route"].as_bool())
            .unwrap_or(false)
    });
    let category_rules = enrichment::rules_of(dest.source);
    let rules_list = if routed {
        sources::rules(&mut conn).await?
    } else {
        Vec::new()
    };
    drop(conn);
    let mut tenant_cache: HashMap<String, TenantRules> = HashMap::new();
    let mut tag_cache: HashMap<(String, String), String> = HashMap::new();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut results: Vec<ItemResult> = Vec::with_capacity(contacts.len());
    let mut to_validate: HashMap<String, Vec<String>> = HashMap::new();

    let chunks = contacts.len().div_ceil(TX_ROWS);
    let mut counts = Counts::default();
    for (chunk_index, chunk) in contacts.chunks_mut(TX_ROWS).enumerate() {
        let mut tx = db.begin_bulk().await?;
        let base = chunk_index * TX_ROWS;
        // What each line became, filled in as the chunk is processed.
        let mut chunk_results: Vec<ItemResult> = Vec::with_capacity(chunk.len());
        // Per tenant: (position in chunk_results, incoming, tag ids).
        let mut staged: HashMap<String, Vec<(usize, Incoming, Vec<String>)>> = HashMap::new();
        let mut repeats: Vec<usize> = Vec::new();
        for (offset, raw) in chunk.iter_mut().enumerate() {
            // Enriched before routing: rules read the country's code and the category.
            if let Err(reason) = enrichment::enrich(raw, &category_rules, &source_label) {
                chunk_results.push(ItemResult {
                    index: base + offset,
                    email: raw.email.trim().to_owned(),
                    status: ItemStatus::Rejected,
                    reason: Some(reason),
                    contact_id: None,
                    tenant_id: Some(dest.tenant_id.to_owned()),
                });
                continue;
            }
            let raw = &*raw;
            let tenant_id = if routed {
                route(&rules_list, raw, &source_label).unwrap_or_else(|| dest.tenant_id.to_owned())
            } else {
                dest.tenant_id.to_owned()
            };
            if !tenant_cache.contains_key(&tenant_id) {
                let loaded = tenant_rules(&mut tx, &tenant_id).await?;
                tenant_cache.insert(tenant_id.clone(), loaded);
            }
            let rules = &tenant_cache[&tenant_id];
            let mut result = ItemResult {
                index: base + offset,
                email: raw.email.trim().to_owned(),
                status: ItemStatus::Rejected,
                reason: None,
                contact_id: None,
                tenant_id: Some(tenant_id.clone()),
            };
            match prepare(&mut tx, rules, raw, &mut tag_cache, now).await? {
                Err(reason) => result.reason = Some(reason),
                Ok((incoming, tag_ids)) => {
                    result.email = incoming.email.clone();
                    if seen.insert((tenant_id.clone(), incoming.email.clone())) {
                        staged.entry(tenant_id.clone()).or_default().push((
                            chunk_results.len(),
                            incoming,
                            tag_ids,
                        ));
                    } else {
                        result.status = ItemStatus::Duplicate;
                        result.reason = Some("appears earlier in this request".into());
                        repeats.push(chunk_results.len());
                    }
                }
            }
            chunk_results.push(result);
        }
        for (tenant_id, items) in staged {
            let hashes: Vec<String> = items
                .iter()
                .map(|(_, inc, _)| inc.email_hash.clone())
                .collect();
            let suppressed = suppression_rows::reasons_for(&mut tx, &tenant_id, &hashes).await?;
            // Every address is offered as new: the insert skips those that exist (one
            // index probe each, instead of a look-up first and the insert's own probe
            // after), and what it did not insert is merged.
            let mut fresh: Vec<(usize, store::NewContact<'_>, &Vec<String>)> = Vec::new();
            for (position, incoming, tag_ids) in &items {
                if let Some(reason) = suppressed.get(&incoming.email_hash) {
                    chunk_results[*position].reason = Some(format!("suppressed ({reason})"));
                } else {
                    fresh.push((
                        *position,
                        store::NewContact {
                            id: ee_core::ids::new_id(),
                            incoming,
                        },
                        tag_ids,
                    ));
                }
            }
            let rows: Vec<store::NewContact<'_>> = fresh
                .iter()
                .map(|(_, row, _)| store::NewContact {
                    id: row.id.clone(),
                    incoming: row.incoming,
                })
                .collect();
            let mine = store::insert_many(
                &mut tx,
                &tenant_id,
                source_id.as_deref(),
                &source_label,
                &rows,
                now,
            )
            .await?;
            let mut pairs = Vec::new();
            let mut merges: Vec<(usize, &Incoming, &Vec<String>)> = Vec::new();
            for (position, row, tag_ids) in &fresh {
                if mine.contains(&row.id) {
                    chunk_results[*position].status = ItemStatus::Created;
                    chunk_results[*position].contact_id = Some(row.id.clone());
                    pairs.extend(tag_ids.iter().map(|t| (row.id.clone(), t.clone())));
                    to_validate
                        .entry(tenant_id.clone())
                        .or_default()
                        .push(row.id.clone());
                } else {
                    // It exists (or a concurrent request created it meanwhile): merge.
                    merges.push((*position, row.incoming, tag_ids));
                }
            }
            store::tag_many(&mut tx, &pairs, now).await?;
            for (position, incoming, tag_ids) in merges {
                let outcome = store::upsert(
                    &mut tx,
                    &tenant_id,
                    source_id.as_deref(),
                    &source_label,
                    incoming,
                    tag_ids,
                    now,
                )
                .await?;
                chunk_results[position].status = match &outcome {
                    Upserted::Created(_) => ItemStatus::Created,
                    Upserted::Updated(_) => ItemStatus::Updated,
                    Upserted::Duplicate(_) => ItemStatus::Duplicate,
                };
                chunk_results[position].contact_id = Some(outcome.id().to_owned());
            }
        }
        // Repeats within the request point at the contact of their first occurrence.
        for position in repeats {
            let tenant_id = chunk_results[position]
                .tenant_id
                .clone()
                .unwrap_or_default();
            let email = chunk_results[position].email.clone();
            let id = match results.iter().chain(chunk_results.iter()).find(|r| {
                r.email == email
                    && r.contact_id.is_some()
                    && r.tenant_id.as_deref() == Some(&tenant_id)
            }) {
                Some(first) => first.contact_id.clone(),
                None => store::get_by_email(&mut tx, &tenant_id, &email)
                    .await?
                    .map(|c| c.id),
            };
            chunk_results[position].contact_id = id;
        }
        for r in &chunk_results {
            counts.add(r.status);
        }
        results.extend(chunk_results);
        if chunk_index + 1 == chunks {
            enqueue_follow_ups(&mut tx, &to_validate, now).await?;
            if let Some(record) = &record {
                record_batch(tx, &dest, record, &results, &counts, now).await?;
                continue;
            }
        }
        tx.commit().await?;
    }
    Ok((results, counts))
}

/// The jobs new contacts need: validation, and the injection into MailWizz for tenants
/// delivering through it.
async fn enqueue_follow_ups(
    conn: &mut AnyConnection,
    to_validate: &HashMap<String, Vec<String>>,
    now: i64,
) -> Result<(), StoreError> {
    for tenant_id in to_validate.keys() {
        crate::delivery::mailwizz::enqueue_sync(&mut *conn, tenant_id, now).await?;
    }
    for (tenant_id, ids) in to_validate {
        for chunk in ids.chunks(200) {
            let job = NewJob::new(
                VALIDATE,
                json!({"tenant_id": tenant_id, "contact_ids": chunk}),
                now,
            )
            .max_attempts(3);
            queue::enqueue(&mut *conn, &job, now).await?;
        }
    }
    Ok(())
}

/// The batch's answer kept for replays, and its audit entry, written with the last chunk,
/// which this commits.
async fn record_batch(
    mut tx: ee_store::Tx,
    dest: &Destination<'_>,
    record: &BatchRecord<'_>,
    results: &[ItemResult],
    counts: &Counts,
    now: i64,
) -> Result<(), AppError> {
    if let Some(batch_id) = record.batch_id {
        let answer = (record.answer)(results, counts);
        let key = batch_source_key(dest.source);
        sources::record_batch(&mut tx, dest.tenant_id, &key, batch_id, &answer, now).await?;
    }
    let change = crate::audit::Change {
        action: "contacts.ingest",
        resource_type: "contact_batch",
        resource_id: record.batch_id,
        tenant_id: Some(dest.tenant_id),
        before: None,
        after: Some(json!({"source": dest.source.map(|s| &s.slug), "counts": counts})),
    };
    crate::write::Write::within(tx, record.caller.clone(), None, now)
        .commit(change)
        .await
}

/// The first field of a contact holding a NUL character, by name. (Custom fields are
/// stored as JSON text, where a NUL is escaped.)
fn field_with_nul(raw: &RawContact) -> Option<&str> {
    if let Some((name, _)) = raw.fields.iter().find(|(_, v)| v.contains('\0')) {
        return Some(name);
    }
    raw.tags.iter().any(|t| t.contains('\0')).then_some("tags")
}

/// Normalises one contact and resolves its tags; `Err` is the reason to reject it.
async fn prepare(
    conn: &mut AnyConnection,
    rules: &TenantRules,
    raw: &RawContact,
    tag_cache: &mut HashMap<(String, String), String>,
    now: i64,
) -> Result<Result<(Incoming, Vec<String>), String>, StoreError> {
    let email = match rules::normalize(&raw.email, rules.folding) {
        Ok(e) => e,
        Err(e) => return Ok(Err(format!("invalid address: {e}"))),
    };
    // PostgreSQL's text cannot hold NUL: refused here with a reason, not by the database.
    if let Some(field) = field_with_nul(raw) {
        return Ok(Err(format!("{field} contains a NUL character")));
    }
    let mut tags = Vec::with_capacity(raw.tags.len());
    for t in &raw.tags {
        match ee_core::tags::parse(t) {
            Ok(tag) => tags.push(tag),
            Err(e) => return Ok(Err(e.to_string())),
        }
    }
    let mut tag_ids = Vec::with_capacity(tags.len());
    for tag in &tags {
        let key = (rules.tenant_id.clone(), tag.slug());
        let id = match tag_cache.get(&key) {
            Some(id) => id.clone(),
            None => {
                let id = store::ensure_tag(&mut *conn, &rules.tenant_id, tag, now).await?;
                tag_cache.insert(key, id.clone());
                id
            }
        };
        tag_ids.push(id);
    }
    let mut fields = BTreeMap::new();
    for (name, value) in &raw.fields {
        let v = value.trim();
        if v.is_empty() {
            continue;
        }
        // Refused, not cut: nothing is stored changed without saying so.
        let length = v.chars().count();
        if length > rules::MAX_FIELD_CHARS {
            return Ok(Err(format!(
                "{name} is {length} characters long; at most {} are kept",
                rules::MAX_FIELD_CHARS
            )));
        }
        let v = match *name {
            "country" | "language" => v.to_ascii_uppercase(),
            // Checked as an IANA name and stored as the database spells it.
            "time_zone" => match ee_core::zone::canonical_zone(v) {
                Ok(zone) => zone,
                Err(why) => return Ok(Err(format!("time_zone: {why}"))),
            },
            _ => v.to_owned(),
        };
        fields.insert(*name, v);
    }
    let metadata_bytes = serde_json::to_string(&raw.metadata).map_or(0, |m| m.len());
    if metadata_bytes > rules::MAX_METADATA_BYTES {
        return Ok(Err(format!(
            "the custom fields take {metadata_bytes} bytes as JSON; at most {} are kept",
            rules::MAX_METADATA_BYTES
        )));
    }
    let email_hash = rules::address_hash(&email);
    // The checks that need no network run now; MX (and the probe) in the validation job.
    let checks = rules::offline_checks(&email, &rules.lists);
    let (verdict, _, reasons) = rules::verdict(&checks);
    let validation_status = if verdict == Verdict::Invalid {
        verdict
    } else {
        Verdict::Unknown
    }
    .as_str()
    .to_owned();
    let validation_reasons = serde_json::to_string(&reasons).unwrap_or_else(|_| "[]".into());
    Ok(Ok((
        Incoming {
            email,
            email_hash,
            fields,
            language_inferred: raw.language_inferred,
            metadata: raw.metadata.clone(),
            tags,
            validation_status,
            validation_reasons,
        },
        tag_ids,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_rules() {
        let rule = |id: &str, priority: i64, c: Value, tenant: &str| sources::RoutingRule {
            id: id.into(),
            priority,
            conditions: c.to_string(),
            tenant_id: tenant.into(),
            created_at: 0,
        };
        let rules = [
            rule("1", 1, json!({"category": "LAWYER"}), "sos-expat"),
            rule(
                "2",
                2,
                json!({"tag": "SECTOR:LEGAL", "country": "FR"}),
                "legal-fr",
            ),
            rule("3", 3, json!({"source": "backlinks"}), "ulixai"),
        ];
        let mut c = RawContact {
            email: "a@x.test".into(),
            ..Default::default()
        };
        c.fields.insert("category", "lawyer".into());
        assert_eq!(route(&rules, &c, "scraper").as_deref(), Some("sos-expat"));
        let mut d = RawContact {
            email: "a@x.test".into(),
            tags: vec!["SECTOR:LEGAL/NOTARY".into()],
            ..Default::default()
        };
        d.fields.insert("country", "FR".into());
        assert_eq!(
            route(&rules, &d, "scraper").as_deref(),
            Some("legal-fr"),
            "a descendant tag matches"
        );
        d.fields.insert("country", "DE".into());
        assert_eq!(route(&rules, &d, "scraper"), None);
        assert_eq!(route(&rules, &d, "backlinks").as_deref(), Some("ulixai"));
    }
}
