//! IP pools' rotation policies, set with their audit entry.

use ee_core::rotation::RotationPolicy;
use ee_store::pools;
pub use ee_store::pools::Pool;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::Change;
use crate::error::AppError;
use crate::read::Read;
use crate::write::Write;

#[derive(Debug, Serialize, ToSchema)]
pub struct PoolOut {
    pub tenant_id: String,
    pub name: String,
    pub rotation: RotationPolicy,
}

impl From<pools::Pool> for PoolOut {
    fn from(p: pools::Pool) -> Self {
        Self {
            rotation: p.policy(),
            tenant_id: p.tenant_id,
            name: p.name,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutPool {
    /// Required for an admin; a tenant's credential sets its own.
    #[serde(alias = "tenant")]
    pub tenant_id: Option<String>,
    pub rotation: RotationPolicy,
}

/// Sets the rotation policy of `tenant_id`'s pool `name` (`default` is the pool of IPs
/// without one).
pub async fn put(
    w: &mut Write,
    tenant_id: &str,
    name: &str,
    input: &PutPool,
) -> Result<PoolOut, AppError> {
    let mut errors = ee_core::ValidationErrors::new();
    ee_core::tenant::validate_slug(name, "name", &mut errors);
    if let Err(message) = input.rotation.check() {
        errors.add("rotation", message);
    }
    errors.into_result()?;
    ee_store::tenants::get(&mut w.tx, tenant_id)
        .await
        .map_err(AppError::from_store("tenant"))?;
    let before = pools::get(&mut w.tx, tenant_id, name)
        .await?
        .map(|p| p.policy());
    let pool = pools::upsert(&mut w.tx, tenant_id, name, &input.rotation, w.now).await?;
    let out = PoolOut::from(pool);
    w.record(Change {
        action: "pool.update",
        resource_type: "pool",
        resource_id: Some(&out.name),
        tenant_id: Some(&out.tenant_id),
        before: before.and_then(|b| serde_json::to_value(b).ok()),
        after: serde_json::to_value(&out).ok(),
    })
    .await?;
    Ok(out)
}

/// The pools with a configured rotation policy that the caller may see.
pub async fn list(read: &mut Read) -> Result<Vec<Pool>, AppError> {
    let (conn, scope) = read.parts();
    Ok(pools::list(conn, scope).await?)
}
