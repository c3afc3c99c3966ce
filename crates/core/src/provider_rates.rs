//! Messages per second towards a provider, counted across every sending IP (and every
//! node): seed 002's PowerMTA rates (Gmail 50/s, Yahoo 30/s, Hotmail 20/s) are the
//! defaults. They sit above the per-IP hourly limits (`DestinationLimits`): a send needs
//! both a slot of its IP's hour and one of the provider's second.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::delivery::Provider;

/// The most a rate may be: beyond it the database's counter would be the bottleneck,
/// not the receiver.
pub const MAX_PER_SECOND: u32 = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderRates {
    /// Provider name → messages per second; a provider not named has no rate of its own.
    pub per_second: BTreeMap<String, u32>,
}

impl Default for ProviderRates {
    fn default() -> Self {
        // Hotmail, Outlook and Live are Microsoft's: one provider for the shaping data.
        let per_second = [("gmail", 50), ("yahoo", 30), ("microsoft", 20)]
            .into_iter()
            .map(|(name, rate)| (name.to_owned(), rate))
            .collect();
        Self { per_second }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RatesError {
    #[error("`{0}`: expected provider=messages_per_second (or provider=none)")]
    Shape(String),
    #[error("`{0}` is not a provider name")]
    Provider(String),
    #[error("`{part}`: the rate must be a whole number from 1 to {MAX_PER_SECOND}, or none")]
    Rate { part: String },
}

impl ProviderRates {
    /// Overrides the defaults from `gmail=50,yahoo=30,orange=10`; `name=none` lifts a
    /// provider's rate. `relay` and `other` take none: a relay's own configuration paces
    /// it, and "other" is every provider at once.
    pub fn parse(text: &str) -> Result<Self, RatesError> {
        let mut rates = Self::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| RatesError::Shape(part.to_owned()))?;
            let name = name.trim();
            if !crate::shaping::valid_provider_name(name)
                || name == Provider::OTHER
                || name == Provider::RELAY
            {
                return Err(RatesError::Provider(name.to_owned()));
            }
            match value.trim() {
                "none" => {
                    rates.per_second.remove(name);
                }
                number => {
                    let rate = number
                        .parse::<u32>()
                        .ok()
                        .filter(|n| (1..=MAX_PER_SECOND).contains(n))
                        .ok_or_else(|| RatesError::Rate {
                            part: part.to_owned(),
                        })?;
                    rates.per_second.insert(name.to_owned(), rate);
                }
            }
        }
        Ok(rates)
    }

    /// The provider's messages per second across IPs, if it has a rate.
    pub fn of(&self, provider: &Provider) -> Option<u32> {
        self.per_second.get(provider.as_str()).copied()
    }

    /// What one of `queues` sending queues (PowerMTA's virtual MTAs) may send an hour
    /// towards a provider so that together they keep to its rate, at most `per_ip_hour`
    /// (the IP's own hourly limit). Rounded down: the sum never exceeds the rate.
    pub fn per_queue_hour(&self, provider: &str, queues: usize, per_ip_hour: u32) -> u32 {
        let Some(rate) = self.per_second.get(provider) else {
            return per_ip_hour;
        };
        let share = u64::from(*rate) * 3600 / queues.max(1) as u64;
        u32::try_from(share)
            .unwrap_or(u32::MAX)
            .min(per_ip_hour)
            .max(1)
    }
}

/// The second (since the epoch) a time in milliseconds falls in.
pub fn second_of(now_ms: i64) -> i64 {
    now_ms.div_euclid(1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_seeds_rates_are_the_defaults_and_may_be_changed_or_lifted() {
        let d = ProviderRates::default();
        assert_eq!(d.of(&Provider::named("gmail")), Some(50));
        assert_eq!(d.of(&Provider::named("yahoo")), Some(30));
        assert_eq!(d.of(&Provider::named("microsoft")), Some(20));
        assert_eq!(d.of(&Provider::other()), None);
        let r = ProviderRates::parse("gmail=10, yahoo=none, orange=5").unwrap();
        assert_eq!(r.of(&Provider::named("gmail")), Some(10));
        assert_eq!(r.of(&Provider::named("yahoo")), None);
        assert_eq!(r.of(&Provider::named("orange")), Some(5));
        assert_eq!(r.of(&Provider::named("microsoft")), Some(20));
        assert!(matches!(
            ProviderRates::parse("gmail=0"),
            Err(RatesError::Rate { .. })
        ));
        assert!(matches!(
            ProviderRates::parse("gmail=100001"),
            Err(RatesError::Rate { .. })
        ));
        assert!(matches!(
            ProviderRates::parse("other=5"),
            Err(RatesError::Provider(_))
        ));
        assert!(matches!(
            ProviderRates::parse("relay=5"),
            Err(RatesError::Provider(_))
        ));
        assert!(matches!(
            ProviderRates::parse("gmail"),
            Err(RatesError::Shape(_))
        ));
    }

    #[test]
    fn queues_share_the_rate_without_exceeding_it() {
        let d = ProviderRates::default();
        // 50/s is 180 000 an hour; one IP is held by its own hourly limit first.
        assert_eq!(d.per_queue_hour("gmail", 1, 3600), 3600);
        assert_eq!(d.per_queue_hour("gmail", 1, 1_000_000), 180_000);
        assert_eq!(d.per_queue_hour("gmail", 7, 1_000_000), 25_714);
        assert_eq!(d.per_queue_hour("orange", 7, 1234), 1234);
        assert_eq!(second_of(1_999), 1);
        assert_eq!(second_of(-1), -1);
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_keeps_rates_in_bounds(text in ".{0,64}") {
            if let Ok(r) = ProviderRates::parse(&text) {
                prop_assert!(r.per_second.values().all(|v| (1..=MAX_PER_SECOND).contains(v)));
            }
        }

        #[test]
        fn the_queues_shares_sum_to_at_most_the_rate(queues in 1usize..500, per_ip in 1u32..10_000_000) {
            let d = ProviderRates::default();
            let each = d.per_queue_hour("gmail", queues, per_ip);
            prop_assert!(each <= per_ip);
            prop_assert!(u64::from(each) * queues as u64 <= 50 * 3600 || each == 1);
        }
    }
}
