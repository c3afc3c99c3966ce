//! Campaign rules: the kinds, the lifecycle and which moves it allows, a recipient's
//! state in the ledger, the throttle, and the thresholds that pause a campaign by itself.

use serde::{Deserialize, Serialize};

use crate::names::names;

/// What a campaign is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CampaignKind {
    /// One send to an audience, now or at a set time.
    Regular,
    /// A sequence of steps each contact runs through after a trigger.
    Autoresponder,
    /// Variants tried on a share of the audience; the winner goes to the rest.
    AbTest,
    /// A feed checked at an interval: each set of new items is one run to the audience.
    Rss,
}

/// Where a campaign is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStatus {
    Draft,
    Scheduled,
    Sending,
    Paused,
    /// Paused by a safety rule (bounce or complaint rate); `status_reason` says which.
    AutoPaused,
    Sent,
    Cancelled,
}

/// Something an operator (or the dispatcher) asks a campaign to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CampaignAction {
    Schedule,
    Start,
    Pause,
    Resume,
    Cancel,
    /// The dispatcher found no recipient left to hand over.
    Finish,
    /// A safety rule stops it.
    AutoPause,
}

names!(CampaignKind {
    Regular => "regular",
    Autoresponder => "autoresponder",
    AbTest => "ab_test",
    Rss => "rss",
});

names!(CampaignStatus {
    Draft => "draft",
    Scheduled => "scheduled",
    Sending => "sending",
    Paused => "paused",
    AutoPaused => "auto_paused",
    Sent => "sent",
    Cancelled => "cancelled",
});

names!(RecipientState {
    Pending => "pending",
    Queued => "queued",
    Sent => "sent",
    Deferred => "deferred",
    Bounced => "bounced",
    Failed => "failed",
    Skipped => "skipped",
    Cancelled => "cancelled",
    Mirrored => "mirrored",
});

/// Where a contact is in an autoresponder's sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EnrollmentState {
    /// Running through the steps.
    Active,
    /// Run by MailWizz (the tenant delivers through it): subscribed to the step's list.
    Mirrored,
    /// Every step sent.
    Completed,
    /// Left before the end (the goal reached, unsubscribed, suppressed…; `detail` says).
    Left,
    /// Never started (not mailable when the trigger fired).
    Excluded,
}

names!(EnrollmentState {
    Active => "active",
    Mirrored => "mirrored",
    Completed => "completed",
    Left => "left",
    Excluded => "excluded",
});

impl CampaignStatus {
    /// Whether the campaign's content and audience may still change.
    pub fn editable(self) -> bool {
        matches!(self, Self::Draft)
    }

    /// Whether the dispatcher hands its recipients over.
    pub fn dispatching(self) -> bool {
        matches!(self, Self::Sending)
    }

    /// Whether nothing more will happen to it.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Sent | Self::Cancelled)
    }

    /// The status `action` leads to from this one, or why it may not.
    pub fn apply(self, action: CampaignAction) -> Result<Self, String> {
        use CampaignAction as A;
        use CampaignStatus as S;
        let next = match (self, action) {
            (S::Draft, A::Schedule) => S::Scheduled,
            (S::Draft | S::Scheduled, A::Start) => S::Sending,
            (S::Sending, A::Pause) => S::Paused,
            (S::Paused | S::AutoPaused, A::Resume) => S::Sending,
            (S::Draft | S::Scheduled | S::Sending | S::Paused | S::AutoPaused, A::Cancel) => {
                S::Cancelled
            }
            (S::Sending, A::Finish) => S::Sent,
            (S::Sending, A::AutoPause) => S::AutoPaused,
            (from, action) => {
                return Err(format!(
                    "a {} campaign cannot {}",
                    from.as_str(),
                    action.verb()
                ));
            }
        };
        Ok(next)
    }
}

impl CampaignAction {
    pub fn verb(self) -> &'static str {
        match self {
            Self::Schedule => "be scheduled",
            Self::Start => "start",
            Self::Pause => "be paused",
            Self::Resume => "resume",
            Self::Cancel => "be cancelled",
            Self::Finish => "finish",
            Self::AutoPause => "pause itself",
        }
    }

    /// The audit action's suffix ("campaign.start").
    pub fn name(self) -> &'static str {
        match self {
            Self::Schedule => "schedule",
            Self::Start => "start",
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Cancel => "cancel",
            Self::Finish => "finish",
            Self::AutoPause => "auto_pause",
        }
    }
}

/// One recipient's place in a campaign's ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecipientState {
    /// In the audience, not handed over yet.
    Pending,
    /// Its message is in the queue.
    Queued,
    Sent,
    /// Its message waits for another attempt.
    Deferred,
    Bounced,
    /// Its message failed, or could not be made (the reason is kept).
    Failed,
    /// Left out when its turn came (suppressed since, over the frequency cap).
    Skipped,
    /// The campaign was cancelled before its turn.
    Cancelled,
    /// Handed to the tenant's MailWizz (a subscriber of the list made for the campaign
    /// there): MailWizz sends it, and its figures are read back into the campaign's.
    Mirrored,
}

/// Whether a custom event name is one we accept: 1 to 64 letters, digits, `_`, `-` or `.`.
pub fn valid_event_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// The contact event a custom event is kept as.
pub fn event_type(name: &str) -> String {
    format!("EVENT:{name}")
}

/// The prefixes of a campaign's breakdown counters (`<prefix><key>`).
pub mod counter {
    /// Clicks per link, by the link's index in the message.
    pub const LINK: &str = "clicked_link_";
    /// Messages handed over per language.
    pub const LANGUAGE: &str = "queued_language_";
    /// An autoresponder's messages handed over per step, by the step's index.
    pub const STEP: &str = "queued_step_";
}

/// How fast a campaign hands its messages over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Throttle {
    /// At most this many messages handed over in any hour (at least 1).
    pub per_hour: u32,
}

impl Throttle {
    /// How many more may go now, given how many went in the last hour.
    pub fn allowance(self, sent_last_hour: i64) -> i64 {
        (i64::from(self.per_hour) - sent_last_hour).max(0)
    }
}

/// The hand-offs of a campaign are counted per minute (the bucket's start, epoch ms); the
/// throttle's hour slides over the last 60 buckets.
pub const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;

/// The minute bucket of an instant.
pub fn minute_of(now: i64) -> i64 {
    now - now.rem_euclid(MINUTE_MS)
}

/// The oldest bucket still inside the sliding hour that ends at `now`.
pub fn window_start(now: i64) -> i64 {
    minute_of(now) - HOUR_MS + MINUTE_MS
}

/// When the sliding hour next has room, given its buckets (start, count) oldest first
/// after this reservation: when the oldest bucket leaves it.
pub fn frees_at(buckets: &[(i64, i64)], now: i64) -> i64 {
    buckets
        .iter()
        .find(|(_, n)| *n > 0)
        .map_or(minute_of(now), |(start, _)| *start)
        + HOUR_MS
}

/// When a campaign pauses itself: its bounce or complaint rate over a minimum number of
/// finished messages (seed 003 §F: 5 % bounces). Per tenant.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PauseThresholds {
    /// Bounced ÷ finished, as a fraction (0.05 = 5 %).
    pub bounce_rate: f64,
    /// Complaints ÷ finished, as a fraction (0.001 = 0.1 %).
    pub complaint_rate: f64,
    /// No rate is judged below this many finished messages.
    pub min_sample: u32,
}

impl Default for PauseThresholds {
    fn default() -> Self {
        Self {
            bounce_rate: 0.05,
            complaint_rate: 0.001,
            min_sample: 100,
        }
    }
}

impl PauseThresholds {
    /// What is wrong with these thresholds, if anything.
    pub fn check(&self) -> Result<(), &'static str> {
        let fraction = |r: f64| r > 0.0 && r <= 1.0;
        if !fraction(self.bounce_rate) || !fraction(self.complaint_rate) {
            return Err(
                "bounce_rate and complaint_rate are fractions above 0 and at most 1 (0.05 = 5 %)",
            );
        }
        if self.min_sample == 0 {
            return Err("min_sample must be at least 1");
        }
        Ok(())
    }

    /// Why a campaign with these counts must pause, if it must.
    pub fn breached(&self, finished: i64, bounced: i64, complained: i64) -> Option<String> {
        if finished < i64::from(self.min_sample) || finished == 0 {
            return None;
        }
        let rate = |n: i64| n as f64 / finished as f64;
        if rate(bounced) > self.bounce_rate {
            return Some(format!(
                "bounce rate {:.1} % over {:.1} % ({bounced} of {finished})",
                rate(bounced) * 100.0,
                self.bounce_rate * 100.0
            ));
        }
        if rate(complained) > self.complaint_rate {
            return Some(format!(
                "complaint rate {:.2} % over {:.2} % ({complained} of {finished})",
                rate(complained) * 100.0,
                self.complaint_rate * 100.0
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CampaignAction as A;
    use CampaignStatus as S;

    #[test]
    fn the_lifecycle_allows_only_its_moves() {
        assert_eq!(S::Draft.apply(A::Schedule), Ok(S::Scheduled));
        assert_eq!(S::Scheduled.apply(A::Start), Ok(S::Sending));
        assert_eq!(S::Sending.apply(A::Pause), Ok(S::Paused));
        assert_eq!(S::Paused.apply(A::Resume), Ok(S::Sending));
        assert_eq!(S::AutoPaused.apply(A::Resume), Ok(S::Sending));
        assert_eq!(S::Sending.apply(A::Finish), Ok(S::Sent));
        assert_eq!(S::Paused.apply(A::Cancel), Ok(S::Cancelled));
        let refused = S::Sent.apply(A::Resume).unwrap_err();
        assert_eq!(refused, "a sent campaign cannot resume");
        assert!(S::Cancelled.apply(A::Start).is_err());
        assert!(S::Draft.apply(A::Pause).is_err());
        assert!(S::Paused.apply(A::Finish).is_err());
        assert!(S::Scheduled.apply(A::Schedule).is_err());
    }

    #[test]
    fn names_round_trip() {
        for s in S::ALL {
            assert_eq!(S::parse(s.as_str()), Some(*s));
        }
        assert_eq!(CampaignKind::parse("ab_test"), Some(CampaignKind::AbTest));
        assert_eq!(CampaignKind::parse("newsletter"), None);
        assert_eq!(
            CampaignKind::names(),
            "regular, autoresponder, ab_test, rss"
        );
    }

    #[test]
    fn event_names() {
        assert!(valid_event_name("trial.started"));
        assert!(valid_event_name("purchase_2"));
        assert!(!valid_event_name(""));
        assert!(!valid_event_name("no spaces"));
        assert!(!valid_event_name(&"x".repeat(65)));
        assert_eq!(event_type("purchase"), "EVENT:purchase");
    }

    #[test]
    fn the_throttle_counts_the_last_hour() {
        let t = Throttle { per_hour: 100 };
        assert_eq!(t.allowance(0), 100);
        assert_eq!(t.allowance(99), 1);
        assert_eq!(t.allowance(150), 0);
    }

    #[test]
    fn the_throttle_hour_slides_by_the_minute() {
        let now = 10 * HOUR_MS + 30 * MINUTE_MS + 15_000;
        assert_eq!(minute_of(now), 10 * HOUR_MS + 30 * MINUTE_MS);
        // The 60 buckets from 9:31 to 10:30 are the last hour.
        assert_eq!(window_start(now), 9 * HOUR_MS + 31 * MINUTE_MS);
        // Room comes back when the oldest non-empty bucket leaves the hour.
        let buckets = [
            (9 * HOUR_MS + 40 * MINUTE_MS, 0),
            (9 * HOUR_MS + 45 * MINUTE_MS, 3),
        ];
        assert_eq!(frees_at(&buckets, now), 10 * HOUR_MS + 45 * MINUTE_MS);
        // Nothing counted yet (a throttle below one batch): an hour after this minute.
        assert_eq!(frees_at(&[], now), 11 * HOUR_MS + 30 * MINUTE_MS);
    }

    #[test]
    fn rates_are_judged_over_the_minimum_sample_only() {
        let t = PauseThresholds::default();
        assert_eq!(t.breached(99, 50, 0), None);
        assert_eq!(t.breached(200, 10, 0), None);
        let bounce = t.breached(200, 11, 0).unwrap();
        assert!(bounce.starts_with("bounce rate 5.5 %"), "{bounce}");
        let complaint = t.breached(1000, 0, 2).unwrap();
        assert!(
            complaint.starts_with("complaint rate 0.20 %"),
            "{complaint}"
        );
    }
}
