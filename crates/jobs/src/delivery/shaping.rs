//! Traffic shaping in the engine (`ee_core::shaping` the rules, `ee_app::delivery::shaping` their
//! states): the states in force, read from the database at most every second so that a
//! suspension set by one node holds on all of them; the pace of a path under a `rate`
//! state, counted in the database (cluster-wide); and, after each reply, the rule it
//! meets set off.

use super::slots::{Got, SlotHold};
use super::*;
use ee_core::rate_limit::Gcra;
use ee_core::shaping::{Active, Effect, Path};

/// How old the states a node acts on may be (ms).
const REFRESH_MS: i64 = 1_000;

/// The states in force as this node last read them.
#[derive(Default)]
pub(super) struct ShapingView {
    read_at: Option<i64>,
    states: Arc<Vec<Active>>,
}

/// Where one attempt goes, as shaping sees it.
pub(super) struct Site {
    /// The provider whose rules and states apply: the MX's, or `relay`.
    pub(super) provider: Provider,
    pub(super) states: Arc<Vec<Active>>,
}

impl Site {
    /// What holds for a message on `path`.
    pub(super) fn effect(&self, path: &Path, message: &Message, now: i64) -> Effect {
        Effect::of(
            &self.states,
            &self.provider,
            path,
            &message.tenant_id,
            message.campaign_id.as_deref(),
            now,
        )
    }
}

/// The path an IP choice sends on (a relay is a path of its own whatever the IP).
pub(super) fn path_of(relay: Option<&ee_store::relays::Relay>, ip_id: Option<&str>) -> Path {
    match (relay, ip_id) {
        (Some(relay), _) => Path::Relay(relay.id.clone()),
        (None, Some(ip)) => Path::Ip(ip.to_owned()),
        (None, None) => Path::Host,
    }
}

/// A message held back by shaping: deferred, not counted as an attempt, until `until`.
pub(super) fn held(until: i64, provider: &Provider, why: &str) -> AttemptResult {
    let mut r = AttemptResult::new(MessageState::Deferred);
    r.uncounted = true;
    r.next_attempt_at = Some(until);
    r.reason = Some(format!(
        "{}({why}) until {}",
        ee_app::delivery::shaping::held_reason_prefix(provider.as_str()),
        ee_core::timefmt::to_rfc3339(until)
    ));
    r
}

impl Engine {
    /// The shaping view for an attempt at `provider`.
    pub(super) async fn site(&self, provider: Provider) -> Result<Site, StoreError> {
        let now = self.services.clock.now_ms();
        let mut view = self.shaping.lock().await;
        if view
            .read_at
            .is_none_or(|at| now - at >= REFRESH_MS || now < at)
        {
            let mut conn = self.services.db.pool().acquire().await?;
            view.states = Arc::new(ee_app::delivery::shaping::active(&mut conn, now).await?);
            view.read_at = Some(now);
        }
        Ok(Site {
            provider,
            states: view.states.clone(),
        })
    }

    /// Under a `rate` state: whether the path may send now (counted in the database, so
    /// every node shares the pace); otherwise when to try. The messages of one batch that
    /// must wait are spread one interval apart, not all sent back at the same instant.
    pub(super) async fn pace(
        &self,
        context: &BatchContext,
        site: &Site,
        path: &Path,
        interval_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let now = self.services.clock.now_ms();
        let key = format!(
            "shaping:{}:{}:{}",
            site.provider,
            path.scope().as_str(),
            path.subject()
        );
        let mut conn = self.services.db.pool().acquire().await?;
        let waits =
            ee_store::rate_limits::take(&mut conn, now, &[(&key, Gcra::every(interval_ms))])
                .await?;
        drop(conn);
        let Some(wait) = waits.first().copied().flatten() else {
            return Ok(None);
        };
        let mut paced = context.paced.lock().await;
        let behind = paced.entry(key).or_insert(0);
        let at = now + wait + *behind * interval_ms;
        *behind += 1;
        Ok(Some(at))
    }

    /// After a reply from `site` on `path`: the first rule it meets is set off (counted,
    /// or at once), and the states it set are this node's at once.
    pub(super) async fn after_reply(
        &self,
        site: &Site,
        path: &Path,
        path_label: Option<&str>,
        message: &Message,
        result: &AttemptResult,
    ) -> Result<(), StoreError> {
        let Some(code) = result.code.and_then(|c| u16::try_from(c).ok()) else {
            return Ok(());
        };
        if (200..400).contains(&code) {
            return Ok(());
        }
        let text = result.reply.as_deref().unwrap_or("");
        let reply = ee_core::feedback::Reply::from_smtp(Some(code), text);
        let Some(rule) = self
            .services
            .delivery
            .shaping
            .matching(&site.provider, &reply)
        else {
            return Ok(());
        };
        let now = self.services.clock.now_ms();
        let mut tx = self.services.db.begin().await?;
        let set = ee_app::delivery::shaping::fire(
            &mut tx,
            rule,
            &site.provider,
            path,
            path_label,
            &message.tenant_id,
            message.campaign_id.as_deref(),
            text,
            now,
        )
        .await?;
        tx.commit().await?;
        if !set.is_empty() {
            let mut view = self.shaping.lock().await;
            let mut states = (*view.states).clone();
            states.extend(set);
            view.states = Arc::new(states);
        }
        Ok(())
    }
}

/// How long a connection slot is held without renewal (ms): a dead node's connections
/// free their slots within this (about the messages' own lease).
const SLOT_LEASE_MS: i64 = 20_000;
/// How often a node renews its slots (ms).
const SLOT_RENEW_MS: i64 = 5_000;
/// How long an attempt waits for a free connection slot before it is deferred.
const SLOT_WAIT: Duration = Duration::from_secs(2);
/// When a message that found no free connection slot is tried again (ms).
pub(super) const SLOT_RETRY_MS: i64 = 10_000;

impl Engine {
    /// A slot for one more connection on `key` (a path at a provider) within `limit`
    /// across the nodes, waiting a little for one to free. While it waits, a connection
    /// of this node to the same destination (`pool`) that comes back idle is taken
    /// instead, and one idle on the same path to another destination gives its slot up.
    pub(super) async fn connection_slot(
        &self,
        pool: &PoolKey,
        key: &str,
        limit: usize,
    ) -> Result<Got, StoreError> {
        let holder = format!("{}{}", self.slot_prefix, ee_core::ids::new_id());
        let deadline = tokio::time::Instant::now() + SLOT_WAIT;
        loop {
            let now = self.services.clock.now_ms();
            let mut conn = self.services.db.pool().acquire().await?;
            let taken = ee_store::connection_slots::acquire(
                &mut conn,
                key,
                limit as i64,
                &holder,
                now + SLOT_LEASE_MS,
                now,
            )
            .await?;
            drop(conn);
            if let Some(slot) = taken {
                return Ok(Got::Slot(SlotHold::new(
                    self.services.db.clone(),
                    key,
                    slot,
                    holder,
                )));
            }
            if let Some(open) = self.take_idle(pool).await {
                return Ok(Got::Idle(open));
            }
            if self.close_idle_on(key).await {
                continue;
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(Got::Nothing);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Closes one of this node's idle connections holding a slot of `key`; whether there
    /// was one.
    async fn close_idle_on(&self, key: &str) -> bool {
        let found = {
            let mut idle = self.idle.lock().await;
            idle.values_mut().find_map(|list| {
                let at = list.iter().position(|(open, _)| open.slot.key == key)?;
                Some(list.remove(at).0)
            })
        };
        match found {
            Some(open) => {
                open.close().await;
                true
            }
            None => false,
        }
    }

    /// Renews this node's connection slots, every `SLOT_RENEW_MS`.
    pub(super) async fn renew_slots(&self) {
        let now = self.services.clock.now_ms();
        let last = self.slots_renewed.load(Ordering::Relaxed);
        if now - last < SLOT_RENEW_MS && now >= last {
            return;
        }
        self.slots_renewed.store(now, Ordering::Relaxed);
        let renewed = async {
            let mut conn = self.services.db.pool().acquire().await?;
            ee_store::connection_slots::renew(&mut conn, &self.slot_prefix, now + SLOT_LEASE_MS)
                .await
        };
        if let Err(e) = renewed.await {
            tracing::warn!(error = %e, "renewing the connection slots failed");
        }
    }
}
