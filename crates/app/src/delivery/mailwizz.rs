//! MailWizz as a delivery route (seed 000 §8.3, option A): the tenant's contacts injected
//! into its instance's default list (and unsubscribed there once we may no longer mail
//! them), templates pushed, the hourly warm-up quota sync of the
//! delivery servers that use our IPs. Sending by the transactional-emails endpoint is in
//! `delivery`.

use ee_store::Scope;
use std::time::Duration;

use ee_connectors::mailwizz::Client;
pub use ee_connectors::mailwizz::MailWizzError;
pub use ee_store::mailwizz::Subscriber;
use ee_store::mailwizz::{self as store, Instance, SubscriberOutcome, SyncOutcome};
use ee_store::{StoreError, templates};
use serde_json::{Map, Value, json};

use crate::{JobError, Services};

/// Sealing purpose of MailWizz API keys.
pub const KEY_PURPOSE: &str = "mailwizz-api-key";

/// Job: inject a tenant's contacts that have no subscriber yet into its default list.
pub const SYNC_SUBSCRIBERS: &str = "mailwizz.subscribers";

/// Subscribers per bulk request.
const BULK: i64 = 100;

#[derive(Debug, thiserror::Error)]
pub enum MwError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    MailWizz(#[from] MailWizzError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for MwError {
    fn from(e: sqlx::Error) -> Self {
        MwError::Store(e.into())
    }
}

impl From<MwError> for JobError {
    fn from(e: MwError) -> Self {
        JobError(e.to_string())
    }
}

/// A client for the instance, its key opened with the master key.
pub fn client(services: &Services, instance: &Instance) -> Result<Client, MwError> {
    let key = services
        .delivery
        .sealer
        .as_ref()
        .and_then(|s| s.open(KEY_PURPOSE, &instance.api_key_sealed).ok())
        .and_then(|k| String::from_utf8(k).ok())
        .ok_or_else(|| {
            MwError::Config(format!(
                "the API key of MailWizz instance `{}` cannot be opened",
                instance.name
            ))
        })?;
    Ok(Client::new(
        &instance.api_url,
        &key,
        Duration::from_secs(15),
        &services.outbound,
    )?
    .with_retries(2, Duration::from_millis(200)))
}

/// What every subscriber of a tenant carries besides its own fields (seed 002's flow):
/// `TENANT`, the tenant's slug, and `SOURCE`, the slug of the data source the contact
/// came from.
pub(crate) struct SubscriberTags {
    tenant: String,
    sources: std::collections::HashMap<String, String>,
}

impl SubscriberTags {
    pub(crate) async fn of_tenant(
        conn: &mut ee_store::AnyConnection,
        tenant_id: &str,
    ) -> Result<Self, StoreError> {
        let tenant = ee_store::tenants::get(&mut *conn, tenant_id).await?;
        let sources = ee_store::sources::list(conn, ee_store::Scope::Tenant(tenant_id))
            .await?
            .into_iter()
            .map(|s| (s.id, s.slug))
            .collect();
        Ok(Self {
            tenant: tenant.slug,
            sources,
        })
    }
}

/// The custom fields a contact carries into MailWizz: EMAIL, FNAME, LNAME, the fields it
/// has (MailWizz's tags: COMPANY, PHONE, CITY, COUNTRY, LANGUAGE…), SOURCE and TENANT.
pub(crate) fn subscriber_fields(
    contact: &ee_store::contacts::Contact,
    tags: &SubscriberTags,
) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert("EMAIL".into(), json!(contact.email));
    fields.insert("TENANT".into(), json!(tags.tenant));
    if let Some(source) = contact
        .source_id
        .as_ref()
        .and_then(|id| tags.sources.get(id))
    {
        fields.insert("SOURCE".into(), json!(source));
    }
    let optional = [
        ("FNAME", &contact.first_name),
        ("LNAME", &contact.last_name),
        ("COMPANY", &contact.company),
        ("PHONE", &contact.phone),
        ("CITY", &contact.city),
        ("COUNTRY", &contact.country),
        ("LANGUAGE", &contact.language),
        ("CATEGORY", &contact.category),
    ];
    for (tag, value) in optional {
        if let Some(v) = value {
            fields.insert(tag.into(), json!(v));
        }
    }
    fields
}

/// After contacts of a tenant were created or stopped being mailable: when the tenant
/// delivers through MailWizz, a job brings its MailWizz list in line.
pub async fn enqueue_sync(
    conn: &mut ee_store::AnyConnection,
    tenant_id: &str,
    now: i64,
) -> Result<(), StoreError> {
    if tenant_uses_mailwizz(&mut *conn, tenant_id).await? {
        let job =
            ee_store::jobs::NewJob::new(SYNC_SUBSCRIBERS, json!({"tenant_id": tenant_id}), now);
        ee_store::jobs::enqueue(conn, &job, now).await?;
    }
    Ok(())
}

/// Job: delete an erased contact's subscribers from MailWizz (GDPR erasure).
pub const ERASE_SUBSCRIBERS: &str = "mailwizz.erase";

/// Before a contact is erased: a job that deletes its MailWizz subscribers, named by
/// instance, list and uid only.
pub async fn enqueue_erasure(
    conn: &mut ee_store::AnyConnection,
    contact_id: &str,
    now: i64,
) -> Result<(), StoreError> {
    let subscribers: Vec<Value> = store::subscribers_of_contact(&mut *conn, contact_id)
        .await?
        .into_iter()
        .filter_map(|s| {
            let uid = s.subscriber_uid?;
            Some(json!({"instance_id": s.instance_id, "list_uid": s.list_uid, "subscriber_uid": uid}))
        })
        .collect();
    if !subscribers.is_empty() {
        let job = ee_store::jobs::NewJob::new(
            ERASE_SUBSCRIBERS,
            json!({"subscribers": subscribers}),
            now,
        );
        ee_store::jobs::enqueue(conn, &job, now).await?;
    }
    Ok(())
}

/// Deletes the subscribers the erasure job names (one already gone counts as deleted).
pub async fn erase_subscribers(services: &Services, payload: &Value) -> Result<Value, MwError> {
    let mut conn = services.db.pool().acquire().await?;
    let mut deleted = 0usize;
    for s in payload["subscribers"].as_array().into_iter().flatten() {
        let field = |name: &str| s[name].as_str().unwrap_or_default().to_owned();
        let instance = match store::get(&mut conn, &field("instance_id"), Scope::All).await {
            Ok(instance) => instance,
            // The instance itself was removed: nothing of ours left to reach.
            Err(StoreError::NotFound) => continue,
            Err(e) => return Err(e.into()),
        };
        let client = client(services, &instance)?;
        match client
            .delete_subscriber(&field("list_uid"), &field("subscriber_uid"))
            .await
        {
            Ok(_) | Err(MailWizzError::NotFound(_)) => deleted += 1,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(json!({"deleted": deleted}))
}

/// Whether the tenant delivers through MailWizz: then its ingested contacts are injected.
pub async fn tenant_uses_mailwizz(
    conn: &mut ee_store::AnyConnection,
    tenant_id: &str,
) -> Result<bool, StoreError> {
    let tenant = ee_store::tenants::get(conn, tenant_id).await?;
    Ok(crate::delivery::tenant_delivery(&tenant).mode == ee_core::delivery::Mode::Mailwizz)
}

/// The subscriber uid in one record of MailWizz's bulk-subscribe answer (under `data`, or
/// flat in older versions).
pub(crate) fn bulk_subscriber_uid(record: &Value) -> Option<&str> {
    record["data"]["subscriber_uid"]
        .as_str()
        .or_else(|| record["subscriber_uid"].as_str())
}

/// Injects the tenant's contacts without a subscriber into the default list of its
/// MailWizz instance, in bulk; keeps each subscriber uid, or why MailWizz refused it.
pub async fn sync_subscribers(services: &Services, tenant_id: &str) -> Result<Value, MwError> {
    let mut conn = services.db.pool().acquire().await?;
    let tenant = ee_store::tenants::get(&mut conn, tenant_id).await?;
    let settings = crate::delivery::tenant_delivery(&tenant);
    let instance = store::find(&mut conn, tenant_id, settings.mailwizz.as_deref())
        .await
        .map_err(|_| MwError::Config("the tenant has no MailWizz instance".into()))?;
    let Some(list_uid) = instance.default_list_uid.clone() else {
        return Err(MwError::Config(format!(
            "MailWizz instance `{}` has no default list",
            instance.name
        )));
    };
    let client = client(services, &instance)?;
    let tags = SubscriberTags::of_tenant(&mut conn, tenant_id).await?;
    let (mut created, mut existing, mut refused) = (0usize, 0usize, 0usize);
    loop {
        let contacts = store::unsynced_contacts(&mut conn, &instance, &list_uid, BULK).await?;
        if contacts.is_empty() {
            break;
        }
        let fields: Vec<Map<String, Value>> = contacts
            .iter()
            .map(|c| subscriber_fields(c, &tags))
            .collect();
        let answer = client.create_subscribers_bulk(&list_uid, &fields).await?;
        let records = answer["records"].as_array().cloned().unwrap_or_default();
        let mut outcomes: Vec<(String, Option<String>, Option<String>)> = Vec::new();
        for (i, contact) in contacts.iter().enumerate() {
            let record = records.get(i).cloned().unwrap_or(Value::Null);
            let uid = bulk_subscriber_uid(&record)
                .filter(|_| record["status"] != "error")
                .map(str::to_owned);
            if let Some(uid) = uid {
                created += 1;
                outcomes.push((contact.id.clone(), Some(uid), None));
                continue;
            }
            // Refused in bulk (already in the list, say): MailWizz may know it already.
            let why = record["error"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| "no subscriber in MailWizz's answer".into());
            match client.search_by_email(&list_uid, &contact.email).await? {
                Some(found) => {
                    existing += 1;
                    let uid = found["subscriber_uid"].as_str().map(str::to_owned);
                    outcomes.push((contact.id.clone(), uid, None));
                }
                None => {
                    refused += 1;
                    outcomes.push((contact.id.clone(), None, Some(why)));
                }
            }
        }
        let rows: Vec<SubscriberOutcome<'_>> = outcomes
            .iter()
            .map(|(contact_id, uid, error)| SubscriberOutcome {
                contact_id,
                subscriber_uid: uid.as_deref(),
                error: error.as_deref(),
            })
            .collect();
        let now = services.clock.now_ms();
        let mut tx = services.db.begin().await?;
        store::record_subscribers(&mut tx, &instance.id, &list_uid, &rows, now).await?;
        tx.commit().await?;
    }
    // Contacts that may no longer be mailed leave the MailWizz list too, so that MailWizz
    // campaigns do not reach them.
    let mut unsubscribed = 0usize;
    loop {
        let stale = store::stale_subscribers(&mut conn, &instance.id, BULK).await?;
        if stale.is_empty() {
            break;
        }
        for (contact_id, list, uid) in stale {
            match client.unsubscribe(&list, &uid).await {
                // Gone from MailWizz already: nothing left to stop.
                Ok(_) | Err(MailWizzError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
            store::mark_unsubscribed(
                &mut conn,
                &instance.id,
                &contact_id,
                &list,
                services.clock.now_ms(),
            )
            .await?;
            unsubscribed += 1;
        }
    }
    Ok(json!({"instance": instance.name, "list_uid": list_uid,
        "created": created, "existing": existing, "refused": refused, "unsubscribed": unsubscribed}))
}

/// Pushes one of our templates to the MailWizz instance: created the first time, updated
/// after. Our MailWizz-style tags ([FNAME], [EMAIL]…) are MailWizz's own.
pub async fn push_template(
    services: &Services,
    instance: &Instance,
    template: &templates::Template,
) -> Result<(String, bool), MwError> {
    let client = client(services, instance)?;
    let mut conn = services.db.pool().acquire().await?;
    let pushed = store::pushed_template(&mut conn, &instance.id, &template.id).await?;
    let name = format!("{} ({})", template.name, template.language);
    let (uid, created) = match pushed {
        Some((uid, _)) => match client
            .update_template(&uid, &name, &template.html_content)
            .await
        {
            Ok(_) => (uid, false),
            // Deleted on MailWizz's side: created again.
            Err(MailWizzError::NotFound(_)) => (
                client
                    .create_template(&name, &template.html_content)
                    .await?,
                true,
            ),
            Err(e) => return Err(e.into()),
        },
        None => (
            client
                .create_template(&name, &template.html_content)
                .await?,
            true,
        ),
    };
    store::record_template(
        &mut conn,
        &instance.id,
        &template.id,
        &uid,
        template.version,
        services.clock.now_ms(),
    )
    .await?;
    Ok((uid, created))
}

/// A template pushed to a MailWizz instance.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct PushOut {
    pub template_id: String,
    pub version: i64,
    pub instance_id: String,
    /// The template's uid in MailWizz.
    pub template_uid: String,
    /// Created now (true) or an update of the one pushed before (false).
    pub created: bool,
}

/// Records a push of a template of `tenant_id` (made outside the transaction: it is a
/// call to MailWizz).
pub async fn record_push(
    w: &mut crate::write::Write,
    tenant_id: &str,
    out: &PushOut,
) -> Result<(), crate::AppError> {
    w.record(crate::audit::Change {
        action: "template.push_mailwizz",
        resource_type: "template",
        resource_id: Some(&out.template_id),
        tenant_id: Some(tenant_id),
        before: None,
        after: serde_json::to_value(out).ok(),
    })
    .await
}

/// What to push for an IP: the hourly quota spreads what is left today over the hours
/// left (rounded up), the daily one is today's warm-up quota. `None`: no limit.
pub fn quotas_for(
    daily_quota: Option<i64>,
    remaining: Option<i64>,
    now_ms: i64,
) -> (Option<i64>, Option<i64>) {
    let hours_left = 24 - (now_ms.rem_euclid(86_400_000) / 3_600_000);
    let hourly = remaining.map(|r| {
        let r = r.max(0);
        (r + hours_left - 1) / hours_left
    });
    (hourly, daily_quota)
}

/// The hourly sync: each mapped IP's quota pushed to its MailWizz delivery server. An
/// instance without a delivery-server endpoint is marked `unsupported` and skipped: no
/// success is reported that did not happen.
pub async fn sync_quotas(services: &Services) -> Result<Value, MwError> {
    let now = services.clock.now_ms();
    let mut conn = services.db.pool().acquire().await?;
    let mappings = store::list_delivery_servers(&mut conn, Scope::All).await?;
    let (mut synced, mut unsupported, mut failed) = (0, 0, 0);
    let mut results = Vec::new();
    for mapping in mappings {
        let outcome = sync_one(services, &mut conn, &mapping, now).await;
        let (status, detail, hourly, daily) = match outcome {
            Ok((hourly, daily)) => {
                synced += 1;
                (
                    "synced",
                    format!("hourly_quota {hourly:?}, daily_quota {daily:?}"),
                    hourly,
                    daily,
                )
            }
            Err(MwError::MailWizz(MailWizzError::NotFound(_))) => {
                unsupported += 1;
                (
                    "unsupported",
                    format!(
                        "MailWizz answered 404: this installation exposes no delivery-server \
                         endpoint, or does not know server {}; nothing pushed",
                        mapping.server_id
                    ),
                    None,
                    None,
                )
            }
            Err(e) => {
                failed += 1;
                tracing::warn!(error = %e, server = %mapping.server_id, "MailWizz quota sync failed");
                let said = match &e {
                    MwError::MailWizz(m) => m.summary(),
                    other => other.to_string(),
                };
                ("failed", said, None, None)
            }
        };
        store::record_sync(
            &mut conn,
            &mapping.id,
            &SyncOutcome {
                status,
                detail: &detail,
                hourly_quota: hourly,
                daily_quota: daily,
            },
            now,
        )
        .await?;
        results.push(
            json!({"mapping": mapping.id, "server_id": mapping.server_id,
            "status": status, "detail": detail}),
        );
    }
    Ok(json!({"synced": synced, "unsupported": unsupported, "failed": failed, "results": results}))
}

async fn sync_one(
    services: &Services,
    conn: &mut ee_store::AnyConnection,
    mapping: &store::DeliveryServer,
    now: i64,
) -> Result<(Option<i64>, Option<i64>), MwError> {
    let instance = store::get(&mut *conn, &mapping.instance_id, Scope::All).await?;
    let ip = ee_store::ips::get(&mut *conn, &mapping.ip_id, Scope::All).await?;
    let quota = crate::infra::quota(&mut *conn, &ip, now)
        .await
        .map_err(|e| MwError::Config(e.to_string()))?;
    let (hourly, daily) = if ip.state.selectable() {
        quotas_for(quota.daily_quota, quota.remaining, now)
    } else {
        // An IP that may not send (quarantined, resting…) gets nothing to send.
        (Some(0), Some(0))
    };
    let client = client(services, &instance)?;
    // Asked first: a 404 here means no endpoint (or no such server) before anything is written.
    client.get_delivery_server(&mapping.server_id).await?;
    let mut fields = Map::new();
    // MailWizz reads 0 as "no limit": an IP with nothing left is pushed as the smallest
    // real limit (1), an unlimited one as 0.
    fields.insert("hourly_quota".into(), json!(push_value(hourly)));
    fields.insert("daily_quota".into(), json!(push_value(daily)));
    client
        .update_delivery_server(&mapping.server_id, &Value::Object(fields))
        .await?;
    Ok((hourly, daily))
}

/// MailWizz quota fields: 0 means unlimited, so "nothing left" is pushed as 1.
fn push_value(quota: Option<i64>) -> i64 {
    match quota {
        None => 0,
        Some(q) => q.max(1),
    }
}

/// A campaign's figures as MailWizz answers them (its `data`).
pub async fn campaign_stats(
    services: &Services,
    instance: &Instance,
    campaign_uid: &str,
) -> Result<Value, MwError> {
    Ok(client(services, instance)?
        .campaign_stats(campaign_uid)
        .await?)
}

/// A contact's subscribers in MailWizz lists, one per (instance, list).
pub async fn subscribers_of(
    read: &mut crate::read::Read,
    contact: &ee_store::contacts::Contact,
) -> Result<Vec<Subscriber>, crate::AppError> {
    Ok(store::subscribers_of_contact(read.conn(), &contact.id).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hourly_quota_spreads_what_is_left_over_the_hours_left() {
        // 10:30 UTC: 14 hours left (10:00–23:59).
        let now = 10 * 3_600_000 + 1_800_000;
        assert_eq!(quotas_for(Some(500), Some(140), now), (Some(10), Some(500)));
        assert_eq!(quotas_for(Some(500), Some(141), now), (Some(11), Some(500)));
        assert_eq!(quotas_for(Some(500), Some(0), now), (Some(0), Some(500)));
        assert_eq!(quotas_for(None, None, now), (None, None));
        // The last hour takes all that is left.
        assert_eq!(
            quotas_for(Some(50), Some(37), 23 * 3_600_000),
            (Some(37), Some(50))
        );
    }

    #[test]
    fn nothing_left_is_never_pushed_as_unlimited() {
        assert_eq!(push_value(Some(0)), 1);
        assert_eq!(push_value(None), 0);
        assert_eq!(push_value(Some(25)), 25);
    }
}
