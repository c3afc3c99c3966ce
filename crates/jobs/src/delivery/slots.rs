//! A connection and the cluster-wide slot it holds (`ee_store::connection_slots`): freed
//! when the connection closes, or by a task when it is dropped. (The engine takes and
//! renews slots in `shaping`.)

use std::sync::Arc;

use ee_mail::smtp::Connection;
use tokio::sync::Semaphore;

/// The connections of a path to a provider: this node's semaphore, and the key and
/// limit of its slots across the nodes.
pub(super) struct Lane {
    pub(super) semaphore: Arc<Semaphore>,
    pub(super) key: String,
    pub(super) limit: usize,
}

/// An open connection and the cluster-wide slot it holds.
pub(super) struct Open {
    pub(super) connection: Connection,
    pub(super) slot: SlotHold,
}

impl Open {
    /// QUIT, then the slot freed.
    pub(super) async fn close(self) {
        self.connection.quit().await;
        self.slot.release().await;
    }
}

/// What waiting for a connection slot came to.
pub(super) enum Got {
    Slot(SlotHold),
    /// A connection to the same destination came back idle meanwhile.
    Idle(Open),
    Nothing,
}

/// A slot of `connection_slots`, freed by `release` or, dropped, by a task.
pub(super) struct SlotHold {
    db: ee_store::Db,
    pub(super) key: String,
    slot: i64,
    holder: String,
}

impl SlotHold {
    pub(super) fn new(db: ee_store::Db, key: &str, slot: i64, holder: String) -> Self {
        Self {
            db,
            key: key.to_owned(),
            slot,
            holder,
        }
    }

    async fn release(mut self) {
        let holder = std::mem::take(&mut self.holder);
        free(&self.db, &self.key, self.slot, &holder).await;
    }
}

async fn free(db: &ee_store::Db, key: &str, slot: i64, holder: &str) {
    if let Ok(mut conn) = db.pool().acquire().await
        && let Err(e) = ee_store::connection_slots::release(&mut conn, key, slot, holder).await
    {
        tracing::warn!(error = %e, "freeing a connection slot failed (it runs out)");
    }
}

impl Drop for SlotHold {
    fn drop(&mut self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.holder.is_empty() {
            return;
        }
        let (db, key, slot, holder) = (
            self.db.clone(),
            std::mem::take(&mut self.key),
            self.slot,
            std::mem::take(&mut self.holder),
        );
        runtime.spawn(async move { free(&db, &key, slot, &holder).await });
    }
}
