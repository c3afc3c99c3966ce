//! The audited write, whichever door (API, CLI, worker) makes it: one transaction, who is
//! acting, the tenants they may see, and the time. A use-case finds the rows it changes
//! through `find` (a row of another tenant is "not found"), makes its change on `tx` and
//! records it; the door then commits once. Dropped without a commit, the scope rolls back,
//! so an error or a 404 half-way leaves neither the change nor its audit entry.

use std::future::Future;

use ee_store::{AnyConnection, Db, Scope, StoreError};
use serde::Serialize;

use crate::audit::{Actor, Caller, Change};
use crate::error::AppError;

/// Writes the audit entry of `change` on `conn`, the change's own transaction; secrets in
/// `before` and `after` are redacted. Only `Write` calls it: there is one audited-write
/// path.
async fn record_entry(
    conn: &mut AnyConnection,
    caller: &Caller,
    change: Change<'_>,
    now: i64,
) -> Result<(), StoreError> {
    use serde_json::{Value, json};
    let redact = |v: Option<Value>| v.map(|v| ee_core::audit::redact(&v)).unwrap_or(Value::Null);
    let changes = json!({ "before": redact(change.before), "after": redact(change.after) });
    let entry = ee_store::audit::NewAuditEntry {
        actor_type: caller.actor.kind.as_str().to_owned(),
        actor_id: caller.actor.id.clone(),
        actor_label: caller.actor.label.clone(),
        tenant_id: change.tenant_id.map(str::to_owned),
        action: change.action.to_owned(),
        resource_type: change.resource_type.to_owned(),
        resource_id: change.resource_id.map(str::to_owned),
        changes: changes.to_string(),
        ip_address: caller.origin.ip.clone(),
        user_agent: caller.origin.user_agent.clone(),
        request_id: caller.origin.request_id.clone(),
    };
    ee_store::audit::insert(conn, entry, now).await?;
    Ok(())
}

pub struct Write {
    pub tx: ee_store::Tx,
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
        let tx = db.begin().await?;
        Ok(Self::within(tx, caller, scope, now))
    }

    /// Opens the scope for a change of many rows (see `Db::begin_bulk`).
    pub async fn open_bulk(
        db: &Db,
        caller: Caller,
        scope: Option<String>,
        now: i64,
    ) -> Result<Self, AppError> {
        let tx = db.begin_bulk().await?;
        Ok(Self::within(tx, caller, scope, now))
    }

    /// The scope around a transaction a use-case opened itself: one that did its network
    /// work first (a DNS check, a deployment) and writes what it found, or one that
    /// commits a long ingest in chunks and records it with the last.
    pub(crate) fn within(
        tx: ee_store::Tx,
        caller: Caller,
        scope: Option<String>,
        now: i64,
    ) -> Self {
        Self {
            tx,
            caller,
            scope,
            now,
        }
    }

    /// Who the change is by, once known (a login learns it inside the transaction).
    pub fn act_as(&mut self, actor: Actor) {
        self.caller.actor = actor;
    }

    /// The tenant the change belongs to, named by id or slug in `tenant_id` (see
    /// `tenancy::resolve`).
    pub async fn tenant(&mut self, requested: Option<&str>) -> Result<String, AppError> {
        crate::access::tenancy::resolve(
            &mut self.tx,
            Scope::from(self.scope.as_deref()),
            requested,
            "tenant_id",
        )
        .await
    }

    /// A row of a tenant the caller may see, or `NotFound` naming its kind.
    pub async fn find<T: Owned>(&mut self, id: &str) -> Result<T, AppError> {
        T::get(&mut self.tx, id, Scope::from(self.scope.as_deref()))
            .await
            .map_err(AppError::from_store(T::NAME))
    }

    /// Records one change of several (a bulk operation); `finish` commits.
    pub async fn record(&mut self, change: Change<'_>) -> Result<(), AppError> {
        record_entry(&mut self.tx, &self.caller, change, self.now).await?;
        Ok(())
    }

    /// Records one change made by another actor in the same transaction (a safety rule
    /// the caller's change set off).
    pub async fn record_by(&mut self, actor: Actor, change: Change<'_>) -> Result<(), AppError> {
        let caller = Caller {
            actor,
            origin: self.caller.origin.clone(),
        };
        record_entry(&mut self.tx, &caller, change, self.now).await?;
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
        scope: Scope<'_>,
    ) -> impl Future<Output = Result<Self, StoreError>> + Send;
}

/// A row as the API shows it, which the audit log records before and after a change.
pub trait Audited: Serialize {
    /// The audit entry's resource type ("relay", "mailwizz_instance").
    const RESOURCE: &'static str;

    fn audit_id(&self) -> &str;
    fn audit_tenant(&self) -> Option<&str>;
}

/// `Audited` for a row shown with `id` and `tenant_id` fields (`optional` when a row may
/// belong to no tenant).
macro_rules! audited {
    ($out:ty, $resource:literal) => {
        impl $crate::write::Audited for $out {
            const RESOURCE: &'static str = $resource;
            fn audit_id(&self) -> &str {
                &self.id
            }
            fn audit_tenant(&self) -> Option<&str> {
                Some(&self.tenant_id)
            }
        }
    };
    ($out:ty, $resource:literal, optional) => {
        impl $crate::write::Audited for $out {
            const RESOURCE: &'static str = $resource;
            fn audit_id(&self) -> &str {
                &self.id
            }
            fn audit_tenant(&self) -> Option<&str> {
                self.tenant_id.as_deref()
            }
        }
    };
}
pub(crate) use audited;

impl Write {
    /// Records that `row` was created by `action`.
    pub async fn created<T: Audited>(&mut self, action: &str, row: &T) -> Result<(), AppError> {
        self.row_change(action, row, None, serde_json::to_value(row).ok())
            .await
    }

    /// Records that `action` changed a row from `before` to `after`.
    pub async fn changed<T: Audited>(
        &mut self,
        action: &str,
        before: &T,
        after: &T,
    ) -> Result<(), AppError> {
        let before = serde_json::to_value(before).ok();
        self.row_change(action, after, before, serde_json::to_value(after).ok())
            .await
    }

    /// Records that `action` removed `row`.
    pub async fn removed<T: Audited>(&mut self, action: &str, row: &T) -> Result<(), AppError> {
        self.row_change(action, row, serde_json::to_value(row).ok(), None)
            .await
    }

    async fn row_change<T: Audited>(
        &mut self,
        action: &str,
        row: &T,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
    ) -> Result<(), AppError> {
        let change = Change {
            action,
            resource_type: T::RESOURCE,
            resource_id: Some(row.audit_id()),
            tenant_id: row.audit_tenant(),
            before,
            after,
        };
        record_entry(&mut self.tx, &self.caller, change, self.now).await?;
        Ok(())
    }
}

/// A tenant-owned row that can be deleted outright, with how the audit log shows it.
pub trait Deletable: Owned {
    /// The audit entry's action ("relay.delete").
    const DELETED: &'static str;
    /// How the API shows the row: the audit entry's `before`.
    type Out: Audited + From<Self>;

    fn delete(
        conn: &mut AnyConnection,
        id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Deletes a row the caller may see (else `NotFound`), recording it as it was.
pub async fn delete<T: Deletable>(w: &mut Write, id: &str) -> Result<(), AppError> {
    let row: T = w.find(id).await?;
    let shown = T::Out::from(row);
    T::delete(&mut w.tx, shown.audit_id()).await?;
    w.removed(T::DELETED, &shown).await
}
