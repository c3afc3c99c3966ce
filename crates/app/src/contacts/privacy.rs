//! The contact's rights under the GDPR: a copy of all that is held about them, and
//! erasure that keeps only the hash of the address, so it is never imported or mailed again.

use ee_core::timefmt::to_rfc3339;
use ee_store::contacts::{self as store, Contact};
use ee_store::suppressions;
use serde_json::{Value, json};

use crate::AppError;
use crate::audit::Change;
use crate::contacts::view::contact_out;
use crate::write::Write;

/// All that is held about a contact the caller may see: the contact, its events and its
/// suppression. The export itself is audited (without its content).
pub async fn export(w: &mut Write, id: &str) -> Result<Value, AppError> {
    let c = w.find::<Contact>(id).await?;
    let tenant_id = c.tenant_id.clone();
    let hash = c.email_hash.clone();
    let all_events = store::events(&mut w.tx, id, None, None, i64::MAX).await?;
    let suppression = suppressions::find(&mut w.tx, &tenant_id, &hash).await?;
    let contact = contact_out(w, c).await?;
    let events: Vec<Value> = all_events
        .into_iter()
        .map(|e| {
            json!({
                "type": e.event_type,
                "campaign_id": e.campaign_id,
                "metadata": serde_json::from_str::<Value>(&e.metadata).unwrap_or_default(),
                "occurred_at": to_rfc3339(e.occurred_at),
            })
        })
        .collect();
    let body = json!({
        "exported_at": to_rfc3339(w.now),
        "contact": contact,
        "events": events,
        "suppression": suppression.map(|s| json!({"reason": s.reason, "since": to_rfc3339(s.created_at)})),
    });
    w.record(Change {
        action: "contact.export",
        resource_type: "contact",
        resource_id: Some(id),
        tenant_id: Some(&tenant_id),
        before: None,
        after: None,
    })
    .await?;
    Ok(body)
}

/// Erases a contact the caller may see: the contact, its tags, events and MailWizz
/// subscribers go; the hash of its address stays in the suppression list.
pub async fn erase(w: &mut Write, id: &str) -> Result<(), AppError> {
    let now = w.now;
    let c = w.find::<Contact>(id).await?;
    // Its MailWizz subscribers go too (by uid: the job's payload holds no address).
    crate::delivery::mailwizz::enqueue_erasure(&mut w.tx, &c.id, now).await?;
    store::erase(&mut w.tx, &c.id).await?;
    if !suppressions::add(
        &mut w.tx,
        &c.tenant_id,
        &c.email_hash,
        None,
        ee_core::contacts::SuppressionReason::Erased,
        Some("gdpr"),
        now,
    )
    .await?
    {
        suppressions::forget_address(&mut w.tx, &c.tenant_id, &c.email_hash).await?;
    }
    // The audit entry keeps the hash, not the address.
    w.record(Change {
        action: "contact.erase",
        resource_type: "contact",
        resource_id: Some(&c.id),
        tenant_id: Some(&c.tenant_id),
        before: Some(json!({"email_hash": c.email_hash})),
        after: None,
    })
    .await
}
