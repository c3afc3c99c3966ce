//! The suppression list: addresses never sent to again, added and removed by hand with
//! their audit entry (bounces, complaints and unsubscribes add theirs where they happen).

use ee_core::contacts::SuppressionReason;
use ee_core::timefmt::to_rfc3339;
use ee_store::suppressions::{self, Suppression};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::audit::Change;
use crate::error::AppError;
use crate::input::invalid;
use crate::read::Read;
use crate::write::Write;

#[derive(Debug, Serialize, ToSchema)]
pub struct SuppressionOut {
    pub id: String,
    /// Absent once the contact was erased: only the hash remains.
    pub email: Option<String>,
    pub email_hash: String,
    pub reason: SuppressionReason,
    pub source: Option<String>,
    pub created_at: String,
}

impl From<Suppression> for SuppressionOut {
    fn from(s: Suppression) -> Self {
        Self {
            id: s.id,
            email: s.email,
            email_hash: s.email_hash,
            reason: s.reason,
            source: s.source,
            created_at: to_rfc3339(s.created_at),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddSuppression {
    pub email: String,
    /// manual (default), bounced, complained, unsubscribed, imported.
    pub reason: Option<String>,
    #[serde(alias = "tenant")]
    pub tenant_id: Option<String>,
}

/// Suppresses an address for `tenant_id`; a contact with it takes the reason as status.
pub async fn add(
    w: &mut Write,
    tenant_id: &str,
    input: AddSuppression,
) -> Result<SuppressionOut, AppError> {
    let reason = match input.reason.as_deref().map(SuppressionReason::parse) {
        None => SuppressionReason::Manual,
        Some(Some(reason)) if reason != SuppressionReason::Erased => reason,
        Some(_) => {
            return Err(invalid(
                "reason",
                "must be manual, bounced, complained, unsubscribed or imported",
            ));
        }
    };
    let email = ee_core::contacts::normalize(&input.email, Default::default())
        .map_err(|e| invalid("email", e.to_string()))?;
    let hash = ee_core::contacts::address_hash(&email);
    let now = w.now;
    if !suppressions::add(
        &mut w.tx,
        tenant_id,
        &hash,
        Some(&email),
        reason,
        Some("api"),
        now,
    )
    .await?
    {
        return Err(AppError::Conflict(
            "this address is suppressed already".into(),
        ));
    }
    if let Some(contact) = ee_store::contacts::get_by_email(&mut w.tx, tenant_id, &email).await? {
        let status = reason.contact_status();
        ee_store::contacts::set_status(&mut w.tx, &contact.id, status, now).await?;
        crate::delivery::mailwizz::enqueue_sync(&mut w.tx, tenant_id, now).await?;
    }
    let entry = suppressions::find(&mut w.tx, tenant_id, &hash)
        .await?
        .ok_or_else(|| AppError::Internal("a suppression just added is missing".into()))?;
    let out = SuppressionOut::from(entry);
    w.record(Change {
        action: "suppression.add",
        resource_type: "suppression",
        resource_id: Some(&out.id),
        tenant_id: Some(tenant_id),
        before: None,
        after: Some(json!({"email": email, "reason": reason})),
    })
    .await?;
    Ok(out)
}

/// Removes an entry of `tenant_id` (not an erasure's: that one stays).
pub async fn remove(w: &mut Write, tenant_id: &str, id: &str) -> Result<(), AppError> {
    if !suppressions::remove(&mut w.tx, tenant_id, id).await? {
        return Err(AppError::NotFound(
            "suppression (erasures cannot be removed)",
        ));
    }
    w.record(Change {
        action: "suppression.remove",
        resource_type: "suppression",
        resource_id: Some(id),
        tenant_id: Some(tenant_id),
        before: None,
        after: None,
    })
    .await
}

/// A tenant's suppression list (of one reason), a page of `limit` after the cursor.
pub async fn list(
    read: &mut Read,
    tenant_id: &str,
    reason: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Suppression>, AppError> {
    Ok(suppressions::list(read.conn(), tenant_id, reason, after, limit).await?)
}
