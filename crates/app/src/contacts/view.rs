//! A contact as the API shows it: its fields, tags, custom fields, where each field came
//! from, and its validation.

use ee_core::timefmt::to_rfc3339;
use ee_store::contacts::{self as store, Contact};
use ee_store::{AnyConnection, StoreError};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

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
    /// valid, risky, invalid or unknown (not checked yet).
    pub status: String,
    pub confidence: Option<f64>,
    pub reasons: Vec<String>,
    pub validated_at: Option<String>,
}

/// A stored contact with its tags, as the API shows it.
pub async fn contact_out(conn: &mut AnyConnection, c: Contact) -> Result<ContactOut, StoreError> {
    let tags = store::tags_of(conn, &c.id).await?;
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
