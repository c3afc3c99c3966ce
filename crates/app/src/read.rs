//! The read scope of a request, beside the audited write (`write::Write`): a pooled
//! connection and the tenants the caller may see. A read needs no audit entry and no
//! transaction; what it may see is the one rule both share: a row of another tenant is
//! "not found" (`find`), a tenant named in a request is resolved within the caller's
//! (`tenant`, `tenant_view`). The queries themselves are the stages' read functions
//! (`infra::ips::list`, `campaigns::recipients` …), which take the scope.

use ee_store::{AnyConnection, Db, Scope};

use crate::error::AppError;
use crate::write::{Owned, Write};

pub struct Read {
    conn: sqlx::pool::PoolConnection<sqlx::Any>,
    /// The tenant the caller is limited to; `None` for all of them (an administrator, a
    /// public endpoint reading what a signed token names).
    tenant: Option<String>,
}

impl Read {
    /// Takes a connection from the pool for a caller limited to `tenant` (`None`: all).
    pub async fn open(db: &Db, tenant: Option<String>) -> Result<Self, AppError> {
        Ok(Self {
            conn: db.acquire().await?,
            tenant,
        })
    }

    /// The tenants the caller may see.
    pub fn scope(&self) -> Scope<'_> {
        Scope::from(self.tenant.as_deref())
    }

    /// A row of a tenant the caller may see, or `NotFound` naming its kind.
    pub async fn find<T: Owned>(&mut self, id: &str) -> Result<T, AppError> {
        let (conn, scope) = self.parts();
        T::get(conn, id, scope)
            .await
            .map_err(AppError::from_store(T::NAME))
    }

    /// The tenant a request names in `tenant_id` (by id or slug), as the caller may see
    /// it (`access::tenancy::resolve`).
    pub async fn tenant(&mut self, requested: Option<&str>) -> Result<String, AppError> {
        let (conn, scope) = self.parts();
        crate::access::tenancy::resolve(conn, scope, requested, "tenant_id").await
    }

    /// What a read covers (`access::tenancy::resolve_view`): the caller's tenant, the one
    /// an administrator names, or every tenant (`None`) when an administrator names none.
    pub async fn tenant_view(
        &mut self,
        requested: Option<&str>,
    ) -> Result<Option<String>, AppError> {
        let (conn, scope) = self.parts();
        crate::access::tenancy::resolve_view(conn, scope, requested, "tenant_id").await
    }

    /// The connection, for the read functions of `app`.
    pub(crate) fn conn(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }

    /// The connection and the scope at once (a query filtered by the caller's tenants).
    pub(crate) fn parts(&mut self) -> (&mut AnyConnection, Scope<'_>) {
        (&mut self.conn, Scope::from(self.tenant.as_deref()))
    }
}

/// What a read function of `app` runs on: a request's `Read`, or a `Write` reading in its
/// own transaction (a row as it shows after the change).
pub trait Reader: sealed::Connection + Send {}

impl<T: sealed::Connection + Send> Reader for T {}

pub(crate) mod sealed {
    use ee_store::AnyConnection;

    /// Not for outside `app`: the connection under a scope.
    pub trait Connection {
        fn connection(&mut self) -> &mut AnyConnection;
    }

    impl Connection for super::Read {
        fn connection(&mut self) -> &mut AnyConnection {
            self.conn()
        }
    }

    impl Connection for super::Write {
        fn connection(&mut self) -> &mut AnyConnection {
            &mut self.tx
        }
    }
}
