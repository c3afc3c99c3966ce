//! Custom events a client posts about a contact (`POST /api/v2/events {contact, name,
//! data}`): kept on the contact's timeline as `EVENT:<name>`, where autoresponders find
//! their `event:<name>` triggers and goals.

use ee_store::contacts::{self as store, Contact};
use ee_store::{AnyConnection, Db, Scope, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::AppError;
use crate::input::invalid;
use ee_core::campaign::{event_type, valid_event_name};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventIn {
    /// The contact: its id or its address.
    pub contact: String,
    /// 1 to 64 letters, digits, `_`, `-` or `.` (`purchase`, `trial.started`).
    pub name: String,
    /// Anything the client wants kept with it (an object).
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
    /// An admin names the tenant (slug or id).
    #[serde(alias = "tenant")]
    pub tenant_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventOut {
    pub contact_id: String,
    pub name: String,
    pub occurred_at: String,
}

async fn contact_of(
    conn: &mut AnyConnection,
    tenant_id: &str,
    key: &str,
) -> Result<Contact, AppError> {
    if key.contains('@') {
        let email = ee_core::contacts::normalize(key, Default::default())
            .map_err(|e| invalid("contact", format!("is not an address: {e}")))?;
        return store::get_by_email(conn, tenant_id, &email)
            .await?
            .ok_or(AppError::NotFound("contact"));
    }
    store::get(conn, key, Scope::Tenant(tenant_id))
        .await
        .map_err(|e| match e {
            StoreError::NotFound => AppError::NotFound("contact"),
            other => other.into(),
        })
}

/// Records a custom event on a contact of `tenant_id`.
pub async fn record(
    db: &Db,
    tenant_id: &str,
    input: EventIn,
    now: i64,
) -> Result<EventOut, AppError> {
    if !valid_event_name(&input.name) {
        return Err(invalid("name", "is 1 to 64 letters, digits, _, - or ."));
    }
    let data = input.data.unwrap_or(Value::Object(Default::default()));
    if !data.is_object() || data.to_string().len() > 16_384 {
        return Err(invalid("data", "is an object of at most 16 KiB"));
    }
    let mut conn = db.acquire().await?;
    let contact = contact_of(&mut conn, tenant_id, input.contact.trim()).await?;
    store::add_event(
        &mut conn,
        tenant_id,
        &contact.id,
        &event_type(&input.name),
        None,
        &serde_json::json!({"name": input.name, "data": data}),
        now,
    )
    .await?;
    Ok(EventOut {
        contact_id: contact.id,
        name: input.name,
        occurred_at: ee_core::timefmt::to_rfc3339(now),
    })
}
