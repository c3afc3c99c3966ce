//! Conditions on what a contact did or was sent: opened, clicked, received (a message of
//! ours was sent to it) or soft-bounced, optionally within the last `days` days (of the
//! application's clock), of one `campaign`, and `at_least` a number of times, e.g.
//! `{"engagement": "opened", "days": 30}`,
//! `{"engagement": "received", "campaign": "<id>"}`,
//! `{"engagement": "soft_bounced", "at_least": 3}`.
//!
//! Opens and clicks are people's (a privacy proxy's or a link scanner's hit is not), and
//! counted per message (three opens of one message are one).

use serde::{Deserialize, Serialize};

use super::{Expr, ExprError};

/// The longest window, in days (ten years).
pub const MAX_DAYS: i64 = 3650;
/// The largest `at_least`.
pub const MAX_AT_LEAST: i64 = 1000;
const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activity {
    Opened,
    Clicked,
    /// A message was sent to the contact (handed to a receiver).
    Received,
    /// A soft bounce (a full mailbox, a time-out…) was recorded for the contact.
    SoftBounced,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Engagement {
    pub engagement: Activity,
    /// Within the last N days (1 to 3650); ever when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<i64>,
    /// Of this campaign (of the segment's tenant); any when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    /// At least this many times (1 to 1000); once when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_least: Option<i64>,
}

impl Engagement {
    pub fn check(&self) -> Result<(), ExprError> {
        if let Some(days) = self.days
            && !(1..=MAX_DAYS).contains(&days)
        {
            return Err(ExprError(format!("days must be 1 to {MAX_DAYS}")));
        }
        if let Some(n) = self.at_least
            && !(1..=MAX_AT_LEAST).contains(&n)
        {
            return Err(ExprError(format!("at_least must be 1 to {MAX_AT_LEAST}")));
        }
        if let Some(id) = &self.campaign {
            let ok = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
            if id.is_empty() || id.len() > 64 || !id.chars().all(ok) {
                return Err(ExprError(format!("campaign {id:?} is not a campaign id")));
            }
        }
        Ok(())
    }

    /// The start of the window in epoch ms, when there is one.
    pub fn since(&self, now_ms: i64) -> Option<i64> {
        self.days.map(|d| now_ms - d * DAY_MS)
    }

    /// How many times (1 when not given).
    pub fn times(&self) -> i64 {
        self.at_least.unwrap_or(1)
    }
}

/// The campaigns an expression names, in order, each once (the caller checks they are
/// the tenant's).
pub fn campaigns(expr: &Expr) -> Vec<&str> {
    fn walk<'a>(expr: &'a Expr, out: &mut Vec<&'a str>) {
        match expr {
            Expr::And { and: items } | Expr::Or { or: items } => {
                items.iter().for_each(|e| walk(e, out))
            }
            Expr::Not { not } => walk(not, out),
            Expr::Engagement(Engagement {
                campaign: Some(id), ..
            }) if !out.contains(&id.as_str()) => out.push(id),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(expr, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn engagement(v: Value) -> Engagement {
        match serde_json::from_value::<Expr>(v).unwrap() {
            Expr::Engagement(e) => e,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bounds() {
        assert!(
            engagement(json!({"engagement": "opened", "days": 30}))
                .check()
                .is_ok()
        );
        assert!(engagement(json!({"engagement": "clicked"})).check().is_ok());
        assert!(
            engagement(json!({"engagement": "soft_bounced", "at_least": 3, "days": 3650}))
                .check()
                .is_ok()
        );
        for bad in [
            json!({"engagement": "opened", "days": 0}),
            json!({"engagement": "opened", "days": 3651}),
            json!({"engagement": "opened", "days": -5}),
            json!({"engagement": "soft_bounced", "at_least": 0}),
            json!({"engagement": "soft_bounced", "at_least": 1001}),
            json!({"engagement": "received", "campaign": ""}),
            json!({"engagement": "received", "campaign": "x' OR 1=1 --"}),
            json!({"engagement": "received", "campaign": "c".repeat(65)}),
        ] {
            assert!(engagement(bad.clone()).check().is_err(), "{bad}");
        }
        assert!(serde_json::from_value::<Expr>(json!({"engagement": "forwarded"})).is_err());
        assert!(
            serde_json::from_value::<Expr>(json!({"engagement": "opened", "days": 1.5})).is_err()
        );
    }

    #[test]
    fn window_and_times() {
        let e = engagement(json!({"engagement": "received", "days": 2}));
        assert_eq!(e.since(10 * DAY_MS), Some(8 * DAY_MS));
        assert_eq!(e.times(), 1);
        let ever = engagement(json!({"engagement": "soft_bounced", "at_least": 4}));
        assert_eq!((ever.since(10), ever.times()), (None, 4));
    }

    #[test]
    fn campaigns_named() {
        let e: Expr = serde_json::from_value(json!({"or": [
            {"engagement": "received", "campaign": "a"},
            {"not": {"and": [{"engagement": "opened", "campaign": "b"}, {"tag": "X"}]}},
            {"engagement": "clicked", "campaign": "a"},
            {"engagement": "clicked"}
        ]}))
        .unwrap();
        assert_eq!(campaigns(&e), ["a", "b"]);
    }
}
