//! A contact as the API shows it: its fields, tags, custom fields, where each field came
//! from, and its validation.

use ee_core::segment::Expr;
use ee_core::timefmt::to_rfc3339;
use ee_store::contacts::{self as store, Contact};
pub use ee_store::contacts::{Event, TagRow};
use ee_store::{Scope, StoreError, segments};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::AppError;
use crate::read::{Read, Reader};

/// A contact as the API answers it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContactOut {
    pub id: String,
    pub tenant_id: String,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub language: Option<String>,
    /// The language was not given but inferred from the country at ingest.
    pub language_inferred: bool,
    /// An ISO 3166-1 alpha-2 code (contacts write a code or a name; it is read at ingest).
    pub country: Option<String>,
    pub address: Option<String>,
    pub city: Option<String>,
    pub category: Option<String>,
    pub company: Option<String>,
    /// Its IANA time zone (`Europe/Paris`); windows in the recipient's zone use its
    /// country's most populous zone when it has none.
    pub time_zone: Option<String>,
    pub status: ee_core::contacts::ContactStatus,
    pub tags: Vec<String>,
    /// Custom fields.
    #[schema(value_type = Object)]
    pub metadata: Value,
    /// Which source gave each field its value.
    #[schema(value_type = Object)]
    pub field_sources: Value,
    pub validation: ValidationOut,
    pub source_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ValidationOut {
    /// `unknown`: not checked yet.
    pub status: ee_core::contacts::Verdict,
    pub confidence: Option<f64>,
    pub reasons: Vec<String>,
    pub validated_at: Option<String>,
}

/// A stored contact with its tags, as the API shows it.
pub async fn contact_out(r: &mut impl Reader, c: Contact) -> Result<ContactOut, AppError> {
    let tags = store::tags_of(r.connection(), &c.id).await?;
    Ok(ContactOut {
        tags,
        metadata: serde_json::from_str(&c.metadata).unwrap_or_default(),
        field_sources: serde_json::from_str(&c.field_sources).unwrap_or_default(),
        validation: ValidationOut {
            status: c.validation_status,
            confidence: c.validation_confidence,
            reasons: serde_json::from_str(&c.validation_reasons).unwrap_or_default(),
            validated_at: c.validated_at.map(to_rfc3339),
        },
        created_at: to_rfc3339(c.created_at),
        updated_at: to_rfc3339(c.updated_at),
        id: c.id,
        tenant_id: c.tenant_id,
        email: c.email,
        first_name: c.first_name,
        last_name: c.last_name,
        phone: c.phone,
        language: c.language,
        language_inferred: c.language_inferred,
        country: c.country,
        address: c.address,
        city: c.city,
        category: c.category,
        company: c.company,
        time_zone: c.time_zone,
        status: c.status,
        source_id: c.source_id,
    })
}

/// A page of a tenant's contacts, newest first, that `expr` matches (all without one),
/// strictly before the key-set cursor; a filter the database cannot run is invalid.
pub async fn page(
    read: &mut Read,
    tenant_id: &str,
    expr: Option<&Expr>,
    before: Option<(i64, String)>,
    limit: i64,
    now: i64,
) -> Result<Vec<Contact>, AppError> {
    segments::page(read.conn(), tenant_id, expr, before, limit, now)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(m) => crate::input::invalid("filter", m),
            other => other.into(),
        })
}

/// A contact's timeline, newest first (of one event type), strictly before the key-set
/// cursor.
pub async fn events(
    read: &mut Read,
    contact_id: &str,
    event_type: Option<&str>,
    before: Option<(i64, String)>,
    limit: i64,
) -> Result<Vec<Event>, AppError> {
    Ok(store::events(read.conn(), contact_id, event_type, before, limit).await?)
}

/// A tenant's tags.
pub async fn tags(read: &mut Read, tenant_id: &str) -> Result<Vec<TagRow>, AppError> {
    Ok(store::list_tags(read.conn(), tenant_id).await?)
}

/// A contact of one tenant by id, or `NotFound` (a contact a request names for a row of
/// that tenant).
pub async fn of_tenant(read: &mut Read, tenant_id: &str, id: &str) -> Result<Contact, AppError> {
    store::get(read.conn(), id, Scope::Tenant(tenant_id))
        .await
        .map_err(AppError::from_store("contact"))
}

/// A contact of one tenant by its (normalised) address, if any.
pub async fn by_email(
    read: &mut Read,
    tenant_id: &str,
    email: &str,
) -> Result<Option<Contact>, AppError> {
    Ok(store::get_by_email(read.conn(), tenant_id, email).await?)
}
