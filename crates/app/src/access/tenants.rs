//! Tenants: the brands this installation serves.

use ee_core::ValidationErrors;
use ee_core::tenant::{validate_name, validate_slug};
use ee_core::timefmt::to_rfc3339;
use ee_store::AnyConnection;
pub use ee_store::tenants::Tenant;
use ee_store::tenants::{self, NewTenant};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::AppError;
use crate::read::Read;
use crate::write::Write;

/// A tenant as the API answers it and the audit log records it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantOut {
    pub id: String,
    pub name: String,
    pub slug: String,
    #[schema(value_type = Object)]
    pub settings: Value,
    pub is_active: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Tenant> for TenantOut {
    fn from(t: Tenant) -> Self {
        Self {
            settings: serde_json::from_str(&t.settings)
                .unwrap_or_else(|_| Value::Object(Default::default())),
            is_active: t.is_active,
            created_at: to_rfc3339(t.created_at),
            updated_at: to_rfc3339(t.updated_at),
            id: t.id,
            name: t.name,
            slug: t.slug,
        }
    }
}

/// What a new tenant is made of.
#[derive(Debug, Clone)]
pub struct NewTenantInput {
    pub name: String,
    pub slug: String,
    /// A JSON object; `{}` when absent.
    pub settings: Option<Value>,
}

/// Creates a tenant.
pub async fn create(w: &mut Write, input: NewTenantInput) -> Result<TenantOut, AppError> {
    let mut errors = ValidationErrors::new();
    validate_name(&input.name, "name", &mut errors);
    validate_slug(&input.slug, "slug", &mut errors);
    if let Some(settings) = &input.settings {
        ee_core::tenant::check_settings(settings, "settings", &mut errors);
    }
    errors.into_result()?;
    let settings = input
        .settings
        .unwrap_or_else(|| Value::Object(Default::default()))
        .to_string();
    let tenant = tenants::insert(
        &mut w.tx,
        NewTenant {
            name: input.name.trim(),
            slug: &input.slug,
            settings: &settings,
        },
        w.now,
    )
    .await?;
    let out = TenantOut::from(tenant);
    w.created("tenant.create", &out).await?;
    Ok(out)
}

/// A tenant by slug or id.
pub async fn find(conn: &mut AnyConnection, key: &str) -> Result<Tenant, AppError> {
    tenants::get_by_slug_or_id(conn, key)
        .await
        .map_err(AppError::from_store("tenant"))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenant {
    pub name: Option<String>,
    pub slug: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub settings: Option<Value>,
    pub is_active: Option<bool>,
}

/// Changes a tenant's name, slug, settings or active flag (the door checks that the
/// caller is an administrator).
pub async fn update(
    w: &mut crate::write::Write,
    mut tenant: Tenant,
    input: UpdateTenant,
) -> Result<TenantOut, AppError> {
    let mut errors = ValidationErrors::new();
    if let Some(name) = &input.name {
        validate_name(name, "name", &mut errors);
    }
    if let Some(slug) = &input.slug {
        validate_slug(slug, "slug", &mut errors);
    }
    if let Some(settings) = &input.settings {
        ee_core::tenant::check_settings(settings, "settings", &mut errors);
    }
    errors.into_result()?;
    let before = TenantOut::from(tenant.clone());
    if let Some(name) = input.name {
        tenant.name = name.trim().to_owned();
    }
    if let Some(slug) = input.slug {
        tenant.slug = slug;
    }
    if let Some(settings) = input.settings {
        tenant.settings = settings.to_string();
    }
    if let Some(active) = input.is_active {
        tenant.is_active = active;
    }
    tenant.updated_at = w.now;
    tenants::update(&mut w.tx, &tenant).await?;
    let out = TenantOut::from(tenant);
    w.changed("tenant.update", &before, &out).await?;
    Ok(out)
}

/// Deletes a tenant and everything it owns (the door checks that the caller is an
/// administrator).
pub async fn delete(w: &mut crate::write::Write, tenant: Tenant) -> Result<(), AppError> {
    tenants::delete(&mut w.tx, &tenant.id).await?;
    w.removed("tenant.delete", &TenantOut::from(tenant)).await
}

/// A tenant is its own tenant in the audit log.
impl crate::write::Audited for TenantOut {
    const RESOURCE: &'static str = "tenant";
    fn audit_id(&self) -> &str {
        &self.id
    }
    fn audit_tenant(&self) -> Option<&str> {
        Some(&self.id)
    }
}

/// The tenants the caller may see, in creation order: a page of `limit` from `offset`.
pub async fn list(read: &mut Read, limit: i64, offset: i64) -> Result<Vec<Tenant>, AppError> {
    let (conn, scope) = read.parts();
    Ok(tenants::list(conn, scope, limit, offset).await?)
}
