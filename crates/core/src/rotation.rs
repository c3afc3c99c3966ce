//! Monthly IP rotation within a pool: the most-used ACTIVE IPs retire (drain, then
//! rest), IPs that have rested long enough come back through warm-up, and the pool
//! always keeps sending capacity.

use serde::{Deserialize, Serialize};

use crate::ip::IpState;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RotationPolicy {
    pub enabled: bool,
    /// Share of the pool's ACTIVE IPs retired each month (rounded up).
    pub retire_fraction: f64,
    /// ACTIVE IPs the pool keeps whatever happens (at least 1).
    pub min_active: i64,
    /// How long a retired IP rests before warming up again.
    pub rest_days: i64,
    /// How long a RETIRING IP drains its last traffic before it rests.
    pub drain_hours: i64,
}

impl Default for RotationPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            retire_fraction: 0.2,
            min_active: 1,
            rest_days: 30,
            drain_hours: 24,
        }
    }
}

impl RotationPolicy {
    pub fn check(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.retire_fraction) {
            return Err("retire_fraction must be between 0 and 1".into());
        }
        if self.min_active < 1 {
            return Err("min_active must be at least 1".into());
        }
        if self.rest_days < 0 || self.drain_hours < 0 {
            return Err("rest_days and drain_hours must not be negative".into());
        }
        Ok(())
    }
}

/// An IP of the pool as rotation sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub id: String,
    pub state: IpState,
    pub state_changed_at: i64,
    /// Messages sent over the last 30 days.
    pub recent_sent: i64,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct RotationPlan {
    /// ACTIVE → RETIRING.
    pub retire: Vec<String>,
    /// RETIRING (drained) → RESTING.
    pub rest: Vec<String>,
    /// RESTING (rested) → WARMING.
    pub rewarm: Vec<String>,
}

/// Drained retiring IPs of any pool go to rest (run daily as well as monthly).
pub fn drained(members: &[Member], policy: &RotationPolicy, now_ms: i64) -> Vec<String> {
    members
        .iter()
        .filter(|m| {
            m.state == IpState::Retiring
                && now_ms - m.state_changed_at >= policy.drain_hours * 3_600_000
        })
        .map(|m| m.id.clone())
        .collect()
}

pub fn plan_rotation(members: &[Member], policy: &RotationPolicy, now_ms: i64) -> RotationPlan {
    if !policy.enabled {
        return RotationPlan::default();
    }
    let rest = drained(members, policy, now_ms);
    let rewarm = members
        .iter()
        .filter(|m| {
            m.state == IpState::Resting
                && now_ms - m.state_changed_at >= policy.rest_days * 86_400_000
        })
        .map(|m| m.id.clone())
        .collect();
    let mut active: Vec<&Member> = members
        .iter()
        .filter(|m| m.state == IpState::Active)
        .collect();
    active.sort_by(|a, b| {
        b.recent_sent
            .cmp(&a.recent_sent)
            .then_with(|| a.id.cmp(&b.id))
    });
    let wanted = (active.len() as f64 * policy.retire_fraction).ceil() as usize;
    let keep = policy.min_active.max(1) as usize;
    let allowed = active.len().saturating_sub(keep);
    let retire = active
        .iter()
        .take(wanted.min(allowed))
        .map(|m| m.id.clone())
        .collect();
    RotationPlan {
        retire,
        rest,
        rewarm,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    fn member(id: &str, state: IpState, changed_days_ago: i64, sent: i64) -> Member {
        Member {
            id: id.into(),
            state,
            state_changed_at: 100 * DAY - changed_days_ago * DAY,
            recent_sent: sent,
        }
    }

    #[test]
    fn the_busiest_active_ips_retire_and_rested_ones_return() {
        let members = [
            member("a", IpState::Active, 60, 9_000),
            member("b", IpState::Active, 60, 50_000),
            member("c", IpState::Active, 60, 20_000),
            member("d", IpState::Active, 60, 1_000),
            member("e", IpState::Active, 60, 5_000),
            member("f", IpState::Resting, 31, 0),
            member("g", IpState::Resting, 10, 0),
            member("h", IpState::Retiring, 2, 0),
            member("i", IpState::Warming, 5, 300),
        ];
        let plan = plan_rotation(&members, &RotationPolicy::default(), 100 * DAY);
        assert_eq!(plan.retire, ["b"], "20 % of 5, the most used");
        assert_eq!(plan.rest, ["h"]);
        assert_eq!(plan.rewarm, ["f"], "g has rested only 10 days");
        let wider = RotationPolicy {
            retire_fraction: 0.5,
            ..RotationPolicy::default()
        };
        assert_eq!(
            plan_rotation(&members, &wider, 100 * DAY).retire,
            ["b", "c", "a"]
        );
    }

    #[test]
    fn a_pool_keeps_its_capacity() {
        let single = [member("a", IpState::Active, 60, 9_000)];
        assert!(
            plan_rotation(&single, &RotationPolicy::default(), 100 * DAY)
                .retire
                .is_empty()
        );
        let pair = [
            member("a", IpState::Active, 60, 1),
            member("b", IpState::Active, 60, 2),
        ];
        let all = RotationPolicy {
            retire_fraction: 1.0,
            min_active: 1,
            ..RotationPolicy::default()
        };
        assert_eq!(plan_rotation(&pair, &all, 100 * DAY).retire, ["b"]);
        let keep_two = RotationPolicy {
            retire_fraction: 1.0,
            min_active: 2,
            ..RotationPolicy::default()
        };
        assert!(plan_rotation(&pair, &keep_two, 100 * DAY).retire.is_empty());
        let off = RotationPolicy {
            enabled: false,
            ..RotationPolicy::default()
        };
        assert_eq!(
            plan_rotation(&pair, &off, 100 * DAY),
            RotationPlan::default()
        );
    }

    #[test]
    fn policies_are_checked() {
        assert!(RotationPolicy::default().check().is_ok());
        assert!(
            RotationPolicy {
                retire_fraction: 1.5,
                ..Default::default()
            }
            .check()
            .is_err()
        );
        assert!(
            RotationPolicy {
                min_active: 0,
                ..Default::default()
            }
            .check()
            .is_err()
        );
    }
}
