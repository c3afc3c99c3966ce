//! The mapping of a tenant's sending IPs to its MailWizz instances' delivery servers,
//! whose quotas the hourly sync pushes from the warm-up plan.

use ee_core::timefmt::to_rfc3339;
use ee_store::Scope;
use ee_store::mailwizz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppError;
use crate::audit::Change;
use crate::input::invalid;
use crate::read::Read;
use crate::write::Write;

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryServerOut {
    pub id: String,
    pub instance_id: String,
    pub ip_id: String,
    /// The delivery server's id in MailWizz.
    pub server_id: String,
    /// The last hourly sync: `synced`, `unsupported` (the instance exposes no
    /// delivery-server endpoint: nothing was pushed) or `failed`; absent before the first.
    pub last_status: Option<String>,
    pub last_detail: Option<String>,
    pub last_hourly_quota: Option<i64>,
    pub last_daily_quota: Option<i64>,
    pub last_sync_at: Option<String>,
    pub created_at: String,
}

impl From<mailwizz::DeliveryServer> for DeliveryServerOut {
    fn from(d: mailwizz::DeliveryServer) -> Self {
        Self {
            id: d.id,
            instance_id: d.instance_id,
            ip_id: d.ip_id,
            server_id: d.server_id,
            last_status: d.last_status,
            last_detail: d.last_detail,
            last_hourly_quota: d.last_hourly_quota,
            last_daily_quota: d.last_daily_quota,
            last_sync_at: d.last_sync_at.map(to_rfc3339),
            created_at: to_rfc3339(d.created_at),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveryServerIn {
    /// The MailWizz instance (id).
    pub instance: String,
    /// The sending IP (id or address).
    pub ip: String,
    /// The delivery server's id in MailWizz.
    pub server_id: String,
}

/// Maps a delivery server of an instance the caller may see to one of the instance's
/// tenant's IPs.
pub async fn create(w: &mut Write, body: DeliveryServerIn) -> Result<DeliveryServerOut, AppError> {
    if body.server_id.trim().is_empty() {
        return Err(invalid("server_id", "is required"));
    }
    let now = w.now;
    let instance = mailwizz::get(&mut w.tx, &body.instance, Scope::from(w.scope.as_deref()))
        .await
        .map_err(|_| invalid("instance", "no such MailWizz instance"))?;
    let ip =
        match ee_store::ips::get(&mut w.tx, &body.ip, Scope::Tenant(&instance.tenant_id)).await {
            Ok(ip) => Some(ip),
            Err(_) => ee_store::ips::get_by_address(&mut w.tx, &body.ip)
                .await
                .ok()
                .filter(|ip| ip.tenant_id.as_deref() == Some(instance.tenant_id.as_str())),
        }
        .ok_or_else(|| invalid("ip", "no such IP for the instance's tenant"))?;
    let mapping = mailwizz::insert_delivery_server(
        &mut w.tx,
        &instance.id,
        &ip.id,
        body.server_id.trim(),
        now,
    )
    .await
    .map_err(|e| match e {
        ee_store::StoreError::Conflict(_) => AppError::Conflict(format!(
            "delivery server {} of this instance is mapped already",
            body.server_id.trim()
        )),
        other => other.into(),
    })?;
    let out = DeliveryServerOut::from(mapping);
    w.record(Change {
        action: "mailwizz.delivery_server.create",
        resource_type: "mailwizz_delivery_server",
        resource_id: Some(&out.id),
        tenant_id: Some(&instance.tenant_id),
        before: None,
        after: serde_json::to_value(&out).ok(),
    })
    .await?;
    Ok(out)
}

/// Removes a mapping the caller may see.
pub async fn delete(w: &mut Write, id: &str) -> Result<(), AppError> {
    let found = mailwizz::get_delivery_server(&mut w.tx, id, Scope::from(w.scope.as_deref()))
        .await
        .map_err(AppError::from_store("delivery server mapping"))?;
    let instance = mailwizz::get(&mut w.tx, &found.instance_id, Scope::All).await?;
    mailwizz::delete_delivery_server(&mut w.tx, &found.id).await?;
    w.record(Change {
        action: "mailwizz.delivery_server.delete",
        resource_type: "mailwizz_delivery_server",
        resource_id: Some(&found.id),
        tenant_id: Some(&instance.tenant_id),
        before: serde_json::to_value(DeliveryServerOut::from(found.clone())).ok(),
        after: None,
    })
    .await
}

/// The mapping of sending IPs to MailWizz delivery servers that the caller may see, with
/// the state of their quota sync.
pub async fn list(read: &mut Read) -> Result<Vec<mailwizz::DeliveryServer>, AppError> {
    let (conn, scope) = read.parts();
    Ok(mailwizz::list_delivery_servers(conn, scope).await?)
}
