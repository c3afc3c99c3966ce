//! Several relays per tenant (MailWizz's delivery servers): which one a message tries
//! first, which next, and which answers send it on to the next.

use serde::{Deserialize, Serialize};

/// The most relays a tenant lists.
pub const MAX_RELAYS: usize = 16;
/// A relay's weight is 1 to this.
pub const MAX_WEIGHT: i64 = 1000;

/// How a tenant's relays share its mail: the first that takes it, in the order listed
/// (the next ones only when it refuses or is unreachable), or each message first to one
/// drawn by weight, then the others in order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RelayOrder {
    #[default]
    Listed,
    Weighted,
}

crate::names::names!(RelayOrder {
    Listed => "listed",
    Weighted => "weighted",
});

/// The order in which a message tries relays of these weights (indexes into `weights`).
/// `draw` is any number spread evenly (a hash of the message and its attempt): by
/// weight, relay `i` comes first for a share `weights[i] / sum` of the draws.
pub fn order(weights: &[i64], how: RelayOrder, draw: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..weights.len()).collect();
    if how == RelayOrder::Weighted && !weights.is_empty() {
        let total: u64 = weights
            .iter()
            .map(|w| w.clamp(&1, &MAX_WEIGHT))
            .map(|w| *w as u64)
            .sum();
        let mut point = draw % total;
        let first = weights
            .iter()
            .position(|w| {
                let w = *w.clamp(&1, &MAX_WEIGHT) as u64;
                if point < w {
                    true
                } else {
                    point -= w;
                    false
                }
            })
            .unwrap_or(0);
        order.remove(first);
        order.insert(0, first);
    }
    order
}

/// Whether an attempt's end at a relay sends the message on to the next relay: the
/// relay was unreachable (no connection, no greeting, TLS or login failed), answered
/// "try later" (4xx: busy, throttled, its queue full), or refused us rather than the
/// recipient (5.7.x: relaying denied, authentication required). A relay's 5xx about the
/// recipient (5.1.1 no such user) is the message's answer: another relay would hear it too.
pub fn fails_over(reached_server: bool, code: Option<i64>, reply: Option<&str>) -> bool {
    match code {
        None => !reached_server,
        Some(400..=499) => true,
        Some(500..=599) => reply.is_some_and(|r| {
            r.split_whitespace()
                .take(2)
                .any(|word| word.starts_with("5.7."))
        }),
        Some(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn listed_keeps_the_order_and_weighted_draws_the_first_by_weight() {
        assert_eq!(order(&[1, 5, 1], RelayOrder::Listed, 99), [0, 1, 2]);
        let mut first = [0usize; 3];
        for draw in 0..700u64 {
            first[order(&[1, 5, 1], RelayOrder::Weighted, draw)[0]] += 1;
        }
        assert_eq!(first, [100, 500, 100]);
        assert_eq!(order(&[3, 1], RelayOrder::Weighted, 3), [1, 0]);
        assert!(order(&[], RelayOrder::Weighted, 3).is_empty());
    }

    #[test]
    fn unreachable_busy_or_refusing_relays_fail_over_but_not_a_recipients_answer() {
        assert!(fails_over(false, None, None));
        assert!(!fails_over(true, Some(250), Some("250 2.0.0 queued")));
        assert!(fails_over(true, Some(421), Some("421 4.3.2 busy")));
        assert!(fails_over(true, Some(451), Some("451 4.4.1 queue full")));
        assert!(fails_over(
            true,
            Some(554),
            Some("554 5.7.1 <x@y.test>: Relay access denied")
        ));
        assert!(fails_over(
            true,
            Some(530),
            Some("530 5.7.0 Authentication required")
        ));
        assert!(!fails_over(true, Some(550), Some("550 5.1.1 no such user")));
        assert!(!fails_over(true, Some(552), None));
    }

    proptest! {
        #[test]
        fn an_order_is_a_permutation(weights in proptest::collection::vec(-5i64..2000, 0..16), draw: u64, weighted: bool) {
            let how = if weighted { RelayOrder::Weighted } else { RelayOrder::Listed };
            let mut got = order(&weights, how, draw);
            got.sort_unstable();
            prop_assert_eq!(got, (0..weights.len()).collect::<Vec<_>>());
        }
    }
}
