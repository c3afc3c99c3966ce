//! What a batch of messages and each of their tenants need, read once per batch.

use ee_store::Scope;
use std::collections::HashMap;
use std::sync::Arc;

use ee_app::Services;
use ee_app::contacts::validation::mx_outcome;
use ee_app::delivery::tenant_delivery;
use ee_core::contacts::MxOutcome;
use ee_core::delivery::{Mode, TenantDelivery};
use ee_store::messages::Message;
use ee_store::{StoreError, relays, suppressions};
use tokio::sync::Mutex;

pub(super) struct TenantContext {
    pub(super) tenant: ee_store::tenants::Tenant,
    pub(super) settings: TenantDelivery,
    /// The relays in relay mode, in the tenant's list order (none otherwise); `Err`
    /// names why the tenant cannot send.
    pub(super) relays: Result<Vec<relays::Relay>, String>,
    /// The MailWizz instance (and a client for it) in MailWizz mode.
    pub(super) mailwizz: Result<
        Option<(
            ee_store::mailwizz::Instance,
            ee_connectors::mailwizz::Client,
        )>,
        String,
    >,
}

impl TenantContext {
    pub(super) async fn load(
        services: &Services,
        conn: &mut ee_store::AnyConnection,
        tenant_id: &str,
    ) -> Result<Self, StoreError> {
        let tenant = ee_store::tenants::get(&mut *conn, tenant_id).await?;
        let settings = tenant_delivery(&tenant);
        let relays = match settings.mode {
            Mode::Relay => {
                let mut found = Ok(Vec::new());
                for key in settings.relay_keys() {
                    match relays::find(&mut *conn, &tenant.id, key).await {
                        Ok(r) => {
                            if let Ok(list) = &mut found {
                                list.push(r);
                            }
                        }
                        Err(StoreError::NotFound) => {
                            found = Err(format!("the tenant's relay `{key}` does not exist"));
                        }
                        Err(e) => return Err(e),
                    }
                }
                match found {
                    Ok(list) if list.is_empty() => Err("relay mode without a relay".into()),
                    other => other,
                }
            }
            Mode::Direct | Mode::Mailwizz => Ok(Vec::new()),
        };
        let mailwizz = if settings.mode == Mode::Mailwizz {
            match ee_store::mailwizz::find(&mut *conn, &tenant.id, settings.mailwizz.as_deref())
                .await
            {
                Ok(instance) => ee_app::delivery::mailwizz::client(services, &instance)
                    .map(|client| Some((instance, client)))
                    .map_err(|e| e.to_string()),
                Err(StoreError::NotFound) => Err(format!(
                    "MailWizz mode, but the MailWizz instance `{}` does not exist",
                    settings.mailwizz.as_deref().unwrap_or("(primary)")
                )),
                Err(e) => return Err(e),
            }
        } else {
            Ok(None)
        };
        Ok(Self {
            tenant,
            settings,
            relays,
            mailwizz,
        })
    }
}

/// Read once for a claimed batch: its tenants, which of its addresses are suppressed,
/// and the MX answers of its domains as they are looked up.
pub(super) struct BatchContext {
    pub(super) tenants: HashMap<String, Arc<TenantContext>>,
    /// (tenant, address) → reason.
    pub(super) suppressed: HashMap<(String, String), String>,
    pub(super) mx: Mutex<HashMap<String, (MxOutcome, Vec<String>)>>,
    /// Per tenant: its IPs that may send, with what they have left today.
    pub(super) quotas: Mutex<HashMap<String, Vec<IpQuota>>>,
    /// Messages whose body, rendered at send time, could not be: message id → why.
    pub(super) unrenderable: HashMap<String, String>,
    /// Per paced path (`shaping`), how many of this batch's messages wait for it.
    pub(super) paced: Mutex<HashMap<String, i64>>,
}

#[derive(Clone)]
pub(super) struct IpQuota {
    pub(super) ip: ee_store::ips::Ip,
    pub(super) daily_quota: Option<i64>,
    pub(super) remaining: Option<i64>,
}

impl BatchContext {
    pub(super) async fn load(
        services: &Services,
        conn: &mut ee_store::AnyConnection,
        batch: &[Message],
    ) -> Result<Self, StoreError> {
        let mut by_tenant: HashMap<&str, Vec<&Message>> = HashMap::new();
        for m in batch {
            by_tenant.entry(&m.tenant_id).or_default().push(m);
        }
        let mut tenants = HashMap::new();
        let mut suppressed = HashMap::new();
        for (tenant_id, messages) in by_tenant {
            match TenantContext::load(services, &mut *conn, tenant_id).await {
                Ok(t) => {
                    tenants.insert(tenant_id.to_owned(), Arc::new(t));
                }
                Err(StoreError::NotFound) => continue,
                Err(e) => return Err(e),
            }
            let hashes: Vec<String> = messages
                .iter()
                .map(|m| ee_core::contacts::address_hash(&m.to_email))
                .collect();
            let reasons = suppressions::reasons_for(&mut *conn, tenant_id, &hashes).await?;
            for (m, hash) in messages.iter().zip(&hashes) {
                if let Some(reason) = reasons.get(hash) {
                    suppressed.insert((tenant_id.to_owned(), m.to_email.clone()), reason.clone());
                }
            }
        }
        Ok(Self {
            tenants,
            suppressed,
            mx: Mutex::new(HashMap::new()),
            quotas: Mutex::new(HashMap::new()),
            unrenderable: HashMap::new(),
            paced: Mutex::new(HashMap::new()),
        })
    }

    /// A tenant's IPs as the batch sees them (read on first use); empty when it has none
    /// at all, `None`-free: IPs that may not send are left out.
    pub(super) async fn ips(
        &self,
        services: &Services,
        tenant_id: &str,
        now: i64,
    ) -> Result<Vec<ee_store::ips::Ip>, StoreError> {
        let mut quotas = self.quotas.lock().await;
        if !quotas.contains_key(tenant_id) {
            let mut conn = services.db.pool().acquire().await?;
            let all = ee_store::ips::list(
                &mut conn,
                &ee_store::ips::IpFilter {
                    scope: Scope::Tenant(tenant_id),
                    ..Default::default()
                },
            )
            .await?;
            let mut list = Vec::new();
            for ip in &all {
                if !ip.state.selectable() {
                    continue;
                }
                match ee_app::infra::quota(&mut conn, ip, now).await {
                    Ok(q) => list.push(IpQuota {
                        ip: ip.clone(),
                        daily_quota: q.daily_quota,
                        remaining: q.remaining,
                    }),
                    Err(e) => tracing::warn!(ip = %ip.ip_address, error = %e, "quota unknown"),
                }
            }
            // A tenant whose IPs all may not send must not fall back to the host address.
            if !all.is_empty() && list.is_empty() {
                list.push(IpQuota {
                    ip: all[0].clone(),
                    daily_quota: Some(0),
                    remaining: Some(0),
                });
            }
            quotas.insert(tenant_id.to_owned(), list);
        }
        Ok(quotas[tenant_id].iter().map(|q| q.ip.clone()).collect())
    }

    /// A domain's MX answer, looked up (cache, then DNS) once per batch. A look-up that
    /// failed is kept for the batch too (the next batch asks again): with the name
    /// servers down, each message of the batch paid the resolver's time-out, so a relay
    /// (which needs the answer only to name the provider) sent a few messages a second.
    pub(super) async fn mx(
        &self,
        services: &Services,
        domain: &str,
        now: i64,
    ) -> Result<(MxOutcome, Vec<String>), StoreError> {
        if let Some(found) = self.mx.lock().await.get(domain) {
            return Ok(found.clone());
        }
        let found = mx_outcome(services, domain, now).await?;
        self.mx
            .lock()
            .await
            .insert(domain.to_owned(), found.clone());
        Ok(found)
    }
}
