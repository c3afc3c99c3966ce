//! Traffic shaping in the engine (`ee_core::shaping` the rules, `ee_app::shaping` their
//! states): the states in force, read from the database at most every second so that a
//! suspension set by one node holds on all of them; the pace of a path under a `rate`
//! state, counted in the database (cluster-wide); and, after each reply, the rule it
//! meets set off.

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
        ee_app::shaping::held_reason_prefix(provider.as_str()),
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
            view.states = Arc::new(ee_app::shaping::active(&mut conn, now).await?);
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
        let set = ee_app::shaping::fire(
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
