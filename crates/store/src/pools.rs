//! IP pools of a tenant and their rotation policy. A pool without a row uses the default
//! policy; IPs without a pool belong to the pool named `default`.

use crate::Scope;
use ee_core::ids::new_id;
use ee_core::rotation::RotationPolicy;
use sqlx::AnyConnection;

use crate::Result;

pub const DEFAULT_POOL: &str = "default";

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Pool {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub rotation: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Pool {
    pub fn policy(&self) -> RotationPolicy {
        serde_json::from_str(&self.rotation).unwrap_or_default()
    }
}

pub async fn get(conn: &mut AnyConnection, tenant_id: &str, name: &str) -> Result<Option<Pool>> {
    Ok(sqlx::query_as(
        "SELECT id, tenant_id, name, rotation, created_at, updated_at FROM ip_pools WHERE tenant_id = $1 AND name = $2",
    )
    .bind(tenant_id)
    .bind(name)
    .fetch_optional(conn)
    .await?)
}

pub async fn list(conn: &mut AnyConnection, scope: Scope<'_>) -> Result<Vec<Pool>> {
    Ok(sqlx::query_as(
        "SELECT id, tenant_id, name, rotation, created_at, updated_at FROM ip_pools \
         WHERE ($1 IS NULL OR tenant_id = $1) ORDER BY tenant_id, name",
    )
    .bind(scope.tenant())
    .fetch_all(conn)
    .await?)
}

/// Creates or replaces a pool's policy.
pub async fn upsert(
    conn: &mut AnyConnection,
    tenant_id: &str,
    name: &str,
    policy: &RotationPolicy,
    now: i64,
) -> Result<Pool> {
    let rotation = serde_json::to_string(policy).unwrap_or_else(|_| "{}".into());
    sqlx::query(
        "INSERT INTO ip_pools (id, tenant_id, name, rotation, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5) \
         ON CONFLICT (tenant_id, name) DO UPDATE SET rotation = excluded.rotation, updated_at = excluded.updated_at",
    )
    .bind(new_id())
    .bind(tenant_id)
    .bind(name)
    .bind(&rotation)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(get(conn, tenant_id, name).await?.unwrap_or(Pool {
        id: String::new(),
        tenant_id: tenant_id.into(),
        name: name.into(),
        rotation,
        created_at: now,
        updated_at: now,
    }))
}

/// The policy that applies to a pool.
pub async fn policy(
    conn: &mut AnyConnection,
    tenant_id: &str,
    name: &str,
) -> Result<RotationPolicy> {
    Ok(get(conn, tenant_id, name)
        .await?
        .map(|p| p.policy())
        .unwrap_or_default())
}
