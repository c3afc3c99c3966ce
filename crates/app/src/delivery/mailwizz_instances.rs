//! A tenant's MailWizz instances (several allowed): added, changed and deleted with their
//! audit entry; the API key sealed at rest and never shown.

use ee_connectors::outbound::{UrlError, check_url};
use ee_core::outbound::OutboundPolicy;
use ee_core::secrets::Sealer;
use ee_core::timefmt::to_rfc3339;
use ee_store::Scope;
pub use ee_store::mailwizz::Instance;
use ee_store::mailwizz::{self as store, NewInstance};
use ee_store::{AnyConnection, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::delivery::mailwizz::KEY_PURPOSE;
use crate::error::AppError;
use crate::input::{invalid, required};
use crate::read::Read;
use crate::write::{Deletable, Write};

/// A MailWizz instance as the API shows it: the key never.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstanceOut {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    /// The API's address, e.g. `https://news.example.com/api`.
    pub api_url: String,
    /// Whether a key is stored (it is never returned).
    pub has_key: bool,
    pub default_list_uid: Option<String>,
    pub is_primary: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Instance> for InstanceOut {
    fn from(i: Instance) -> Self {
        Self {
            id: i.id,
            tenant_id: i.tenant_id,
            name: i.name,
            api_url: i.api_url,
            has_key: !i.api_key_sealed.is_empty(),
            default_list_uid: i.default_list_uid,
            is_primary: i.is_primary,
            created_at: to_rfc3339(i.created_at),
            updated_at: to_rfc3339(i.updated_at),
        }
    }
}

impl Deletable for Instance {
    const DELETED: &'static str = "mailwizz.delete";
    type Out = InstanceOut;

    async fn delete(conn: &mut AnyConnection, id: &str) -> Result<(), StoreError> {
        store::delete(conn, id).await
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstanceIn {
    pub name: Option<String>,
    pub api_url: Option<String>,
    /// Sealed at rest, never returned.
    pub api_key: Option<String>,
    pub default_list_uid: Option<String>,
    pub is_primary: Option<bool>,
    #[serde(alias = "tenant")]
    pub tenant_id: Option<String>,
}

/// What checking and sealing an instance needs.
pub struct InstanceRules<'a> {
    pub outbound: &'a OutboundPolicy,
    pub sealer: &'a Sealer,
}

impl InstanceRules<'_> {
    /// The instance's address: http(s), with a host this server may connect to
    /// (`ee_core::outbound`; checked again at each call).
    fn api_url(&self, value: &str) -> Result<String, AppError> {
        let trimmed = value.trim().trim_end_matches('/');
        match check_url(self.outbound, trimmed) {
            Ok(()) if !trimmed.contains(char::is_whitespace) => Ok(trimmed.to_owned()),
            Err(UrlError::Refused(refused)) => Err(invalid("api_url", refused.to_string())),
            _ => Err(invalid(
                "api_url",
                "must be an http(s) address, e.g. https://news.example.com/api",
            )),
        }
    }

    fn seal(&self, key: &str) -> String {
        self.sealer.seal(KEY_PURPOSE, key.as_bytes())
    }
}

/// Adds an instance to `tenant_id`.
pub async fn create(
    w: &mut Write,
    rules: &InstanceRules<'_>,
    tenant_id: &str,
    input: &InstanceIn,
) -> Result<InstanceOut, AppError> {
    let name = required(&input.name, "name")?;
    let url = rules.api_url(required(&input.api_url, "api_url")?)?;
    let sealed = rules.seal(required(&input.api_key, "api_key")?);
    let instance = store::insert(
        &mut w.tx,
        tenant_id,
        &NewInstance {
            name,
            api_url: &url,
            api_key_sealed: &sealed,
            default_list_uid: input.default_list_uid.as_deref(),
            is_primary: input.is_primary.unwrap_or(false),
        },
        w.now,
    )
    .await?;
    let out = InstanceOut::from(instance);
    w.created("mailwizz.create", &out).await?;
    Ok(out)
}

/// Changes the fields `input` gives.
pub async fn update(
    w: &mut Write,
    rules: &InstanceRules<'_>,
    id: &str,
    input: &InstanceIn,
) -> Result<InstanceOut, AppError> {
    if input.tenant_id.is_some() {
        return Err(invalid(
            "tenant_id",
            "an instance cannot move to another tenant",
        ));
    }
    let mut instance: Instance = w.find(id).await?;
    let before = InstanceOut::from(instance.clone());
    if input.name.is_some() {
        instance.name = required(&input.name, "name")?.to_owned();
    }
    if let Some(url) = &input.api_url {
        instance.api_url = rules.api_url(url)?;
    }
    if input.api_key.is_some() {
        instance.api_key_sealed = rules.seal(required(&input.api_key, "api_key")?);
    }
    if let Some(list) = &input.default_list_uid {
        instance.default_list_uid = Some(list.clone()).filter(|l| !l.is_empty());
    }
    if let Some(primary) = input.is_primary {
        instance.is_primary = primary;
    }
    store::update(&mut w.tx, &instance, w.now).await?;
    let out = InstanceOut::from(store::get(&mut w.tx, &instance.id, Scope::All).await?);
    w.changed("mailwizz.update", &before, &out).await?;
    Ok(out)
}

crate::write::audited!(InstanceOut, "mailwizz_instance");

/// The MailWizz instances the caller may see.
pub async fn list(read: &mut Read) -> Result<Vec<Instance>, AppError> {
    let (conn, scope) = read.parts();
    Ok(store::list(conn, scope).await?)
}

/// A tenant's instance by id or name, or its primary one (`None`); one that is not there
/// is an invalid `instance`.
pub async fn of_tenant(
    read: &mut Read,
    tenant_id: &str,
    key: Option<&str>,
) -> Result<Instance, AppError> {
    store::find(read.conn(), tenant_id, key).await.map_err(|_| {
        invalid(
            "instance",
            "no such MailWizz instance for the template's tenant",
        )
    })
}
