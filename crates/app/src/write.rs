//! The audited write, whichever door (API, CLI, worker) makes it: one transaction, who is
//! acting, the tenants they may see, and the time. A use-case finds the rows it changes
//! through `find` (a row of another tenant is "not found"), makes its change on `tx` and
//! records it; the door then commits once. Dropped without a commit, the scope rolls back,
//! so an error or a 404 half-way leaves neither the change nor its audit entry.

use std::future::Future;

use ee_store::{AnyConnection, Db, StoreError};
use serde::Serialize;

use crate::audit::{self, Actor, Caller, Change};
use crate::error::AppError;

pub struct Write {
    pub tx: sqlx::Transaction<'static, sqlx::Any>,
    pub caller: Caller,
    /// The tenant the caller is limited to; `None` for all of them (an administrator,
    /// the command line, a worker).
    pub scope: Option<String>,
    pub now: i64,
}

impl Write {
    /// Opens the scope (on SQLite, a transaction that holds the write lock from its start).
    pub async fn open(
        db: &Db,
        caller: Caller,
        scope: Option<String>,
        now: i64,
    ) -> Result<Self, AppError> {
        Ok(Self {
            tx: db.begin().await?,
            caller,
            scope,
            now,
        })
    }

    /// Opens the scope for a change of many rows (see `Db::begin_bulk`).
    pub async fn open_bulk(
        db: &Db,
        caller: Caller,
        scope: Option<String>,
        now: i64,
    ) -> Result<Self, AppError> {
        Ok(Self {
            tx: db.begin_bulk().await?,
            caller,
            scope,
            now,
        })
    }

    /// Who the change is by, once known (a login learns it inside the transaction).
    pub fn act_as(&mut self, actor: Actor) {
        self.caller.actor = actor;
    }

    /// A row of a tenant the caller may see, or `NotFound` naming its kind.
    pub async fn find<T: Owned>(&mut self, id: &str) -> Result<T, AppError> {
        T::get(&mut self.tx, id, self.scope.as_deref())
            .await
            .map_err(AppError::from_store(T::NAME))
    }

    /// Records one change of several (a bulk operation); `finish` commits.
    pub async fn record(&mut self, change: Change<'_>) -> Result<(), AppError> {
        audit::record(&mut self.tx, &self.caller, change, self.now).await?;
        Ok(())
    }

    /// Records one change made by another actor in the same transaction (a safety rule
    /// the caller's change set off).
    pub async fn record_by(&mut self, actor: Actor, change: Change<'_>) -> Result<(), AppError> {
        let caller = Caller {
            actor,
            origin: self.caller.origin.clone(),
        };
        audit::record(&mut self.tx, &caller, change, self.now).await?;
        Ok(())
    }

    /// Commits what was recorded.
    pub async fn finish(self) -> Result<(), AppError> {
        self.tx.commit().await?;
        Ok(())
    }

    /// Records `change` and commits.
    pub async fn commit(mut self, change: Change<'_>) -> Result<(), AppError> {
        self.record(change).await?;
        self.finish().await
    }
}

/// A row a tenant owns, found by id within the caller's scope.
pub trait Owned: Sized + Send {
    /// What a 404 calls it ("relay", "MailWizz instance").
    const NAME: &'static str;

    fn get(
        conn: &mut AnyConnection,
        id: &str,
        scope: Option<&str>,
    ) -> impl Future<Output = Result<Self, StoreError>> + Send;
}

/// A tenant-owned row that can be deleted outright, with how the audit log shows it.
pub trait Deletable: Owned {
    /// The audit entry's resource type ("relay", "mailwizz_instance").
    const RESOURCE: &'static str;
    /// The audit entry's action ("relay.delete").
    const DELETED: &'static str;
    /// How the API shows the row: the audit entry's `before`.
    type Out: Serialize + From<Self>;

    fn id(&self) -> &str;
    fn tenant_id(&self) -> Option<&str>;
    fn delete(
        conn: &mut AnyConnection,
        id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Deletes a row the caller may see (else `NotFound`), recording it as it was.
pub async fn delete<T: Deletable>(w: &mut Write, id: &str) -> Result<(), AppError> {
    let row: T = w.find(id).await?;
    T::delete(&mut w.tx, row.id()).await?;
    let (row_id, tenant_id) = (row.id().to_owned(), row.tenant_id().map(str::to_owned));
    w.record(Change {
        action: T::DELETED,
        resource_type: T::RESOURCE,
        resource_id: Some(&row_id),
        tenant_id: tenant_id.as_deref(),
        before: serde_json::to_value(T::Out::from(row)).ok(),
        after: None,
    })
    .await
}
