//! Which tenant a request acts on: the rule every door and every route shares.

use ee_core::ValidationErrors;
use ee_store::{AnyConnection, Scope};

use crate::error::AppError;

/// The tenant a request acts on, named by id or slug in its `field`: for a caller limited
/// to one tenant (`scope`), that one (naming another is "not found", as if it did not
/// exist); for one who sees all, the one named, which must exist and be named.
pub async fn resolve(
    conn: &mut AnyConnection,
    scope: Scope<'_>,
    requested: Option<&str>,
    field: &str,
) -> Result<String, AppError> {
    match (scope.tenant(), requested) {
        (Some(own), None) => Ok(own.to_owned()),
        (None, None) => Err(ValidationErrors::single(field, "is required for an admin").into()),
        (scope, Some(key)) => {
            let found = ee_store::tenants::get_by_slug_or_id(conn, key)
                .await
                .map_err(AppError::from_store("tenant"))?;
            match scope {
                Some(own) if own != found.id => Err(AppError::NotFound("tenant")),
                _ => Ok(found.id),
            }
        }
    }
}

/// What a read covers: for a caller limited to one tenant, that one (naming another is
/// "not found"); for one who sees all, the tenant named, or every tenant (`None`) when
/// none is.
pub async fn resolve_view(
    conn: &mut AnyConnection,
    scope: Scope<'_>,
    requested: Option<&str>,
    field: &str,
) -> Result<Option<String>, AppError> {
    match (scope.tenant(), requested) {
        (None, None) => Ok(None),
        _ => resolve(conn, scope, requested, field).await.map(Some),
    }
}
