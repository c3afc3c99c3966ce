//! A campaign's pace where its messages meet a transport: the delivery engine asks, for
//! each batch it claims, which campaign messages may go now. A message outside its
//! campaign's sending window waits for the window to open (in the tenant's zone, or the
//! recipient's); within it, the throttle's sliding hour is reserved in the database, so
//! the limit holds across nodes and whatever waits in the queue. Held messages go back to
//! the queue unattempted, with the reason and the time they wait for.

use std::collections::{BTreeMap, HashMap, HashSet};

use ee_core::zone::{SendWindow, TimeZone};
use ee_store::messages::{self, Hold, Message};
use ee_store::{Scope, StoreError, campaigns, handoffs};

use crate::Services;
use crate::campaigns::settings::CampaignSettings;

/// A campaign's pace, read once per batch.
struct Pace {
    settings: CampaignSettings,
    zone: TimeZone,
}

async fn pace_of(
    conn: &mut ee_store::AnyConnection,
    campaign_id: &str,
) -> Result<Option<Pace>, StoreError> {
    let campaign = match campaigns::get(conn, campaign_id, Scope::All).await {
        Ok(c) => c,
        Err(StoreError::NotFound) => return Ok(None),
        Err(e) => return Err(e),
    };
    let settings = CampaignSettings::of(&campaign);
    if settings.throttle.is_none() && settings.window.is_none() {
        return Ok(None);
    }
    let zone = crate::delivery::tenant_zone(conn, &campaign.tenant_id).await?;
    Ok(Some(Pace { settings, zone }))
}

/// Holds back the campaign messages of a claimed batch that may not go now, in one
/// transaction with their throttle's reservation; returns the ids held.
pub async fn hold_back(
    services: &Services,
    lease: &str,
    batch: &[Message],
    now: i64,
) -> Result<HashSet<String>, StoreError> {
    let mut by_campaign: BTreeMap<&str, Vec<&Message>> = BTreeMap::new();
    for m in batch {
        if let Some(c) = &m.campaign_id {
            by_campaign.entry(c).or_default().push(m);
        }
    }
    // Read first: most campaigns have no pace, and then no write is needed.
    let mut paced = Vec::new();
    let mut conn = services.db.pool().acquire().await?;
    for (campaign_id, messages) in by_campaign {
        if let Some(pace) = pace_of(&mut conn, campaign_id).await? {
            paced.push((campaign_id, messages, pace));
        }
    }
    drop(conn);
    if paced.is_empty() {
        return Ok(HashSet::new());
    }
    let mut tx = services.db.begin().await?;
    let mut holds = Vec::new();
    for (campaign_id, messages, pace) in paced {
        let mut open = Vec::new();
        match &pace.settings.window {
            Some(window) => {
                let zones = recipient_zones(&mut tx, window, &messages).await?;
                for m in messages {
                    let own = m.contact_id.as_ref().and_then(|c| zones.get(c));
                    let zone = window.zone_for(&pace.zone, own);
                    match window.next_opening(now, &zone) {
                        Some(until) => holds.push(Hold {
                            message_id: m.id.clone(),
                            until,
                            reason: format!(
                                "waiting for the campaign's sending window ({})",
                                window.describe(&zone)
                            ),
                        }),
                        None => open.push(m),
                    }
                }
            }
            None => open = messages,
        }
        if let (Some(throttle), false) = (pace.settings.throttle, open.is_empty()) {
            let reserved = handoffs::reserve(
                &mut tx,
                services.db.backend(),
                campaign_id,
                throttle,
                open.len() as i64,
                now,
            )
            .await?;
            let granted = usize::try_from(reserved.granted).unwrap_or(0);
            for m in open.into_iter().skip(granted) {
                holds.push(Hold {
                    message_id: m.id.clone(),
                    until: reserved.retry_at,
                    reason: format!(
                        "waiting for the campaign's throttle ({} an hour)",
                        throttle.per_hour
                    ),
                });
            }
        }
    }
    messages::hold(&mut tx, lease, &holds, now).await?;
    tx.commit().await?;
    Ok(holds.into_iter().map(|h| h.message_id).collect())
}

/// The recipients' own zones (`ee_core::zone::recipient_zone`: theirs, else their
/// country's), for a window read in the recipient's zone.
async fn recipient_zones(
    conn: &mut ee_store::AnyConnection,
    window: &SendWindow,
    messages: &[&Message],
) -> Result<HashMap<String, ee_core::zone::TimeZone>, StoreError> {
    if window.zone != ee_core::zone::WindowZone::Recipient {
        return Ok(HashMap::new());
    }
    let ids: Vec<String> = messages
        .iter()
        .filter_map(|m| m.contact_id.clone())
        .collect();
    crate::delivery::recipient_zones(conn, &ids).await
}
