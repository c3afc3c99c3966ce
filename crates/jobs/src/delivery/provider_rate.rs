//! A provider's rate across IPs and nodes (`ee_core::provider_rates`): each send towards
//! a provider with a rate takes a slot of the current second in the database before an
//! IP is chosen; a full second holds the message until the next one, uncounted.

use std::sync::atomic::Ordering;

use ee_core::delivery::Provider;
use ee_core::provider_rates::second_of;
use ee_store::{StoreError, provider_seconds};

use super::Engine;
use super::context::BatchContext;
use super::routing::Choice;

/// Counts are kept this many seconds, then deleted.
const KEPT_SECONDS: i64 = 60;

pub(super) enum RateSlot {
    /// The provider has no rate.
    Unpaced,
    /// A send of this second was taken.
    Taken(i64),
    /// The second is full: the next one starts then (ms).
    Full(i64),
}

impl Engine {
    /// Takes a send of `provider`'s current second, if it has a rate.
    pub(super) async fn rate_slot(
        &self,
        provider: &Provider,
        now: i64,
    ) -> Result<RateSlot, StoreError> {
        let Some(rate) = self.services.delivery.rates.of(provider) else {
            return Ok(RateSlot::Unpaced);
        };
        let second = second_of(now);
        let mut conn = self.services.db.pool().acquire().await?;
        let last = self.rates_forgotten.load(Ordering::Relaxed);
        if second - last >= KEPT_SECONDS
            && self
                .rates_forgotten
                .compare_exchange(last, second, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            provider_seconds::forget_before(&mut conn, second - KEPT_SECONDS).await?;
        }
        if provider_seconds::reserve(&mut conn, provider.as_str(), second, i64::from(rate)).await? {
            Ok(RateSlot::Taken(second))
        } else {
            Ok(RateSlot::Full((second + 1) * 1000))
        }
    }

    /// Gives a slot back (no IP took the message, or the send reached no server).
    pub(super) async fn release_rate_slot(
        &self,
        provider: &Provider,
        second: Option<i64>,
    ) -> Result<(), StoreError> {
        if let Some(second) = second {
            let mut conn = self.services.db.pool().acquire().await?;
            provider_seconds::release(&mut conn, provider.as_str(), second).await?;
        }
        Ok(())
    }

    /// A slot of the provider's second (its rate across IPs), then the tenant's IP with
    /// the most quota left that can take one more message towards this provider this
    /// hour and that shaping does not hold (`held`: until when a path is held); the send
    /// is counted at once, and the slot given back when no IP takes it.
    pub(super) async fn choose_ip(
        &self,
        context: &BatchContext,
        tenant_id: &str,
        provider: &Provider,
        held: &(dyn Fn(Option<&str>) -> Option<i64> + Sync),
    ) -> Result<Choice, StoreError> {
        let now = self.services.clock.now_ms();
        let second = match self.rate_slot(provider, now).await? {
            RateSlot::Unpaced => None,
            RateSlot::Taken(second) => Some(second),
            RateSlot::Full(until) => return Ok(Choice::Paced(until)),
        };
        let choice = self
            .choose_ip_for(context, tenant_id, provider, held, now)
            .await;
        match choice {
            Ok(Choice::Chosen(mut chosen)) => {
                chosen.rate_second = second;
                Ok(Choice::Chosen(chosen))
            }
            other => {
                self.release_rate_slot(provider, second).await?;
                other
            }
        }
    }
}
