//! A tenant's several relays: the order a message tries them in (listed, or the first
//! drawn by weight), each relay's hourly limit, and failover to the next one when a relay
//! refuses or is unreachable (`ee_core::relay_choice`).

use ee_core::delivery::MessageState;
use ee_core::delivery::TenantDelivery;
use ee_core::relay_choice::{self, fails_over};
use ee_store::StoreError;
use ee_store::messages::Message;
use ee_store::relays::{self as relay_rows, Relay};

use super::attempt::AttemptResult;
use super::context::{BatchContext, TenantContext};
use super::shaping::{Site, path_of};
use super::{Chosen, Engine};

/// A number spread evenly for each message and attempt (FNV-1a), so a weighted draw
/// differs between messages and between one message's attempts.
fn draw(message: &Message) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in message.id.bytes().chain(message.attempts.to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

impl Engine {
    /// The tenant's relays in the order this message tries them.
    pub(super) fn relay_order(
        &self,
        settings: &TenantDelivery,
        relays: &[Relay],
        message: &Message,
    ) -> Vec<Relay> {
        let weights: Vec<i64> = relays.iter().map(|r| r.weight).collect();
        relay_choice::order(&weights, settings.relay_order, draw(message))
            .into_iter()
            .map(|i| relays[i].clone())
            .collect()
    }

    /// Sends through the first relay that takes the message: one shaping holds, or at
    /// its hourly limit, is passed over; one that refuses or is unreachable hands the
    /// message to the next. The last relay's answer stands.
    pub(super) async fn send_by_relays(
        &self,
        context: &BatchContext,
        message: &Message,
        (tenant_context, relays): (&TenantContext, &[Relay]),
        target: (&str, &[String]),
        site: &Site,
        chosen: &Chosen,
    ) -> Result<AttemptResult, StoreError> {
        let now = self.services.clock.now_ms();
        let hour = now / 3_600_000;
        let mut passed: Vec<String> = Vec::new();
        let mut last: Option<AttemptResult> = None;
        let mut next_free: Option<i64> = None;
        for (n, relay) in relays.iter().enumerate() {
            let path = path_of(Some(relay), chosen.ip_id.as_deref());
            if let Some(until) = site.effect(&path, message, now).held_until {
                next_free = Some(next_free.map_or(until, |t| t.min(until)));
                passed.push(format!("relay `{}` held by traffic shaping", relay.name));
                continue;
            }
            let counted = match relay.max_per_hour {
                Some(limit) => {
                    let mut conn = self.services.db.pool().acquire().await?;
                    if !relay_rows::reserve_hour(&mut conn, &relay.id, hour, limit).await? {
                        let next_hour = (hour + 1) * 3_600_000;
                        next_free = Some(next_free.map_or(next_hour, |t| t.min(next_hour)));
                        passed.push(format!(
                            "relay `{}` at its hourly limit ({limit})",
                            relay.name
                        ));
                        continue;
                    }
                    true
                }
                None => false,
            };
            let result = self
                .send_chosen(
                    context,
                    message,
                    (tenant_context, Some(relay)),
                    target,
                    site,
                    chosen,
                )
                .await?;
            if counted && !result.reached_server {
                let mut conn = self.services.db.pool().acquire().await?;
                relay_rows::release_hour(&mut conn, &relay.id, hour).await?;
            }
            let more = n + 1 < relays.len();
            if more
                && !result.uncounted
                && result.state != MessageState::Sent
                && fails_over(result.reached_server, result.code, result.reply.as_deref())
            {
                let why = result
                    .reply
                    .clone()
                    .or_else(|| result.reason.clone())
                    .unwrap_or_else(|| "unreachable".into());
                tracing::info!(message = %message.id, relay = %relay.name, %why, "relay failover");
                passed.push(format!("relay `{}`: {why}", relay.name));
                last = Some(result);
                continue;
            }
            return Ok(noted(result, &passed));
        }
        Ok(match last {
            Some(result) => noted(result, &passed),
            None => {
                // Every relay was passed over: wait, uncounted, for the first to free up.
                let mut r = AttemptResult::new(MessageState::Deferred);
                r.uncounted = true;
                r.next_attempt_at = next_free;
                r.reason = Some(passed.join("; "));
                r
            }
        })
    }
}

/// The result with the relays passed over before it named in its reason.
fn noted(mut result: AttemptResult, passed: &[String]) -> AttemptResult {
    if !passed.is_empty() && result.state != MessageState::Sent {
        let own = result.reason.take();
        result.reason = Some(
            passed
                .iter()
                .cloned()
                .chain(own)
                .collect::<Vec<_>>()
                .join("; "),
        );
    }
    result
}
