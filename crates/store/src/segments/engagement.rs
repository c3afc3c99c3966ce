//! Engagement conditions: a correlated subquery per condition on the table that records
//! the activity (`tracking_hits` for people's opens and clicks, `messages` sent for
//! received, `delivery_events` of class soft for soft bounces), scoped to the contact and
//! its tenant, so the count stays in the database. The window's start comes from the
//! application's clock, bound like every other value. Each table has an index that leads
//! with the contact (migration 0029).

use ee_core::feedback::Class;
use ee_core::machine_hits::HitKind;
use ee_core::segment::{Activity, Engagement};

use super::compile::{Compiler, Param};

impl Compiler {
    pub(super) fn engagement(&mut self, e: &Engagement) -> String {
        let (table, time, what) = match e.engagement {
            Activity::Opened | Activity::Clicked => {
                let kind = if e.engagement == Activity::Opened {
                    HitKind::Open
                } else {
                    HitKind::Click
                };
                let kind = self.push(Param::Text(kind.as_str().to_owned()));
                (
                    "tracking_hits",
                    "occurred_at",
                    format!("x.kind = {kind} AND x.machine = 0"),
                )
            }
            Activity::Received => ("messages", "sent_at", "x.sent_at IS NOT NULL".to_owned()),
            Activity::SoftBounced => {
                let class = self.push(Param::Text(Class::Soft.as_str().to_owned()));
                (
                    "delivery_events",
                    "occurred_at",
                    format!("x.class = {class}"),
                )
            }
        };
        let mut conditions =
            format!("x.contact_id = c.id AND x.tenant_id = c.tenant_id AND {what}");
        if let Some(since) = e.since(self.now) {
            let p = self.push(Param::Int(since));
            conditions.push_str(&format!(" AND x.{time} >= {p}"));
        }
        if let Some(campaign) = &e.campaign {
            let p = self.push(Param::Text(campaign.clone()));
            conditions.push_str(&format!(" AND x.campaign_id = {p}"));
        }
        match e.times() {
            1 => format!("EXISTS (SELECT 1 FROM {table} x WHERE {conditions})"),
            n => {
                // Opens and clicks count messages (three opens of one are one).
                let counted = match e.engagement {
                    Activity::Opened | Activity::Clicked => "COUNT(DISTINCT x.message_id)",
                    _ => "COUNT(*)",
                };
                let p = self.push(Param::Int(n));
                format!("((SELECT {counted} FROM {table} x WHERE {conditions}) >= {p})")
            }
        }
    }
}
