//! A tenant's delivery settings: mode (direct, relay, MailWizz), tracking defaults,
//! frequency cap, return path, default sender. Checked when written, so a read never
//! meets a value it cannot use.

use ee_core::delivery::TenantDelivery;
use ee_store::{relays, tenants};
use serde_json::{Value, json};

use crate::AppError;
use crate::audit::Change;
use crate::delivery::tenant_delivery;
use crate::input::invalid;
use crate::read::Read;
use crate::write::Write;

/// Sets how `tenant` (id or slug) delivers; the relay or MailWizz instance it names must
/// be its own.
pub async fn set(
    w: &mut Write,
    tenant: &str,
    body: TenantDelivery,
) -> Result<TenantDelivery, AppError> {
    let tenant_id = w.tenant(Some(tenant)).await?;
    let mut tenant = tenants::get(&mut w.tx, &tenant_id).await?;
    if body.relays.len() > ee_core::relay_choice::MAX_RELAYS {
        return Err(invalid(
            "relays",
            format!("at most {} relays", ee_core::relay_choice::MAX_RELAYS),
        ));
    }
    if body.mode == ee_core::delivery::Mode::Relay {
        if body.relay_keys().is_empty() {
            return Err(invalid("relay", "is required in relay mode"));
        }
        let named = body.relay.iter().map(|k| ("relay", k));
        for (field, key) in named.chain(body.relays.iter().map(|k| ("relays", k))) {
            relays::find(&mut w.tx, &tenant_id, key)
                .await
                .map_err(|_| invalid(field, format!("no relay `{key}` for this tenant")))?;
        }
    }
    if body.mode == ee_core::delivery::Mode::Mailwizz {
        let instance = ee_store::mailwizz::find(&mut w.tx, &tenant_id, body.mailwizz.as_deref())
            .await
            .map_err(|_| {
                invalid(
                    "mailwizz",
                    match &body.mailwizz {
                        Some(key) => format!("no MailWizz instance `{key}` for this tenant"),
                        None => "the tenant has no primary MailWizz instance: name one".into(),
                    },
                )
            })?;
        if instance.default_list_uid.is_none() {
            return Err(invalid(
                "mailwizz",
                format!(
                    "MailWizz instance `{}` has no default list for the tenant's contacts",
                    instance.name
                ),
            ));
        }
    }
    if let Some(domain) = &body.bounce_domain
        && !ee_core::address::is_host_name(domain)
    {
        return Err(invalid("bounce_domain", "is not a domain name"));
    }
    if let Err(message) = body.soft_bounces.check() {
        return Err(invalid("soft_bounces", message));
    }
    if let Err(message) = body.campaign_auto_pause.check() {
        return Err(invalid("campaign_auto_pause", message));
    }
    if let Some(zone) = &body.time_zone
        && let Err(message) = ee_core::zone::parse_zone(zone)
    {
        return Err(invalid("time_zone", message));
    }
    for (field, value) in [
        ("return_path", &body.return_path),
        ("unsubscribe_mailto", &body.unsubscribe_mailto),
        ("default_from_email", &body.default_from_email),
        ("default_reply_to", &body.default_reply_to),
    ] {
        if let Some(v) = value
            && ee_core::contacts::normalize(v, Default::default()).is_err()
        {
            return Err(invalid(field, "is not a valid address"));
        }
    }
    if let Some(cap) = body.frequency_cap
        && (cap.max == 0 || cap.hours == 0)
    {
        return Err(invalid("frequency_cap", "max and hours must be at least 1"));
    }
    let before = tenant_delivery(&tenant);
    let mut settings: Value = serde_json::from_str(&tenant.settings).unwrap_or(json!({}));
    if !settings.is_object() {
        settings = json!({});
    }
    settings["delivery"] = serde_json::to_value(&body).unwrap_or(Value::Null);
    tenant.settings = settings.to_string();
    tenants::update(&mut w.tx, &tenant).await?;
    w.record(Change {
        action: "tenant.delivery",
        resource_type: "tenant",
        resource_id: Some(&tenant.id),
        tenant_id: Some(&tenant.id),
        before: serde_json::to_value(&before).ok(),
        after: serde_json::to_value(&body).ok(),
    })
    .await?;
    Ok(body)
}

/// Changes some of how `tenant` delivers: `patch` is a JSON Merge Patch (RFC 7396) of its
/// settings (a member given replaces the current one, `null` puts it back to its
/// default); the result is checked as a whole, as `set` does.
pub async fn patch(w: &mut Write, tenant: &str, patch: &Value) -> Result<TenantDelivery, AppError> {
    if !patch.is_object() {
        return Err(invalid(
            "body",
            "must be a JSON object of the settings to change (JSON Merge Patch)",
        ));
    }
    let tenant_id = w.tenant(Some(tenant)).await?;
    let current = tenant_delivery(&tenants::get(&mut w.tx, &tenant_id).await?);
    let mut merged = serde_json::to_value(&current).unwrap_or_else(|_| json!({}));
    ee_core::merge_patch::apply(&mut merged, patch);
    let body: TenantDelivery = serde_path_to_error::deserialize(&merged).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "body".to_owned() } else { path };
        invalid(&field, e.into_inner().to_string())
    })?;
    set(w, &tenant_id, body).await
}

/// How a tenant (id or slug, one the caller may see) delivers.
pub async fn get(read: &mut Read, tenant: &str) -> Result<TenantDelivery, AppError> {
    let tenant_id = read.tenant(Some(tenant)).await?;
    let tenant = tenants::get(read.conn(), &tenant_id).await?;
    Ok(tenant_delivery(&tenant))
}
