//! A campaign's figures, counted as events arrive (`store::campaigns::count`): what the
//! dispatcher handed over, what became of each message, the opens, clicks and
//! unsubscribes; read back as totals, rates and hourly buckets without scanning the
//! messages. And the safety rule they feed: a campaign over its tenant's bounce or
//! complaint threshold pauses itself, with an alert.

use std::collections::BTreeMap;

use ee_core::campaign::CampaignStatus;
use ee_core::delivery::MessageState;
use ee_core::timefmt::to_rfc3339;
use ee_store::AnyConnection;
use ee_store::campaigns::{self as store, Campaign};
use ee_store::messages::Message;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppError;
use crate::campaigns::view::CampaignOut;
use crate::write::Write;

/// The counters a campaign's totals always show.
pub const COUNTERS: &[&str] = &[
    "queued",
    "skipped",
    "sent",
    "deferred",
    "bounced",
    "bounced_hard",
    "bounced_soft",
    "bounced_block",
    "bounced_other",
    "failed",
    "delivered",
    "opened",
    "opened_unique",
    "clicked",
    "clicked_unique",
    "unsubscribed",
    "complained",
];

/// The counter a message's new state adds to.
pub fn counter_of(state: MessageState) -> Option<&'static str> {
    Some(match state {
        MessageState::Sent => "sent",
        MessageState::Bounced => "bounced",
        MessageState::Deferred => "deferred",
        MessageState::Failed | MessageState::Expired => "failed",
        MessageState::Suppressed => "skipped",
        MessageState::Queued | MessageState::Sending => return None,
    })
}

/// Counts what became of a batch's campaign messages.
pub async fn record_outcomes<'a>(
    conn: &mut AnyConnection,
    outcomes: impl IntoIterator<Item = (&'a Message, MessageState)>,
    now: i64,
) -> Result<(), ee_store::StoreError> {
    let mut counts: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for (message, state) in outcomes {
        if let (Some(campaign), Some(name)) = (message.campaign_id.as_deref(), counter_of(state)) {
            *counts.entry((campaign, name)).or_default() += 1;
        }
    }
    for ((campaign, name), n) in counts {
        store::count(conn, campaign, name, n, now).await?;
    }
    Ok(())
}

/// Counts an open, a click or an unsubscribe of a campaign message; `first` when it is the
/// message's first of its kind (a unique one).
pub async fn record_engagement(
    conn: &mut AnyConnection,
    message: &Message,
    event: &str,
    first: bool,
    link: Option<u32>,
    now: i64,
) -> Result<(), ee_store::StoreError> {
    let Some(campaign) = message.campaign_id.as_deref() else {
        return Ok(());
    };
    store::count(conn, campaign, event, 1, now).await?;
    if first {
        store::count(conn, campaign, &format!("{event}_unique"), 1, now).await?;
    }
    if let Some(link) = link {
        store::count(
            conn,
            campaign,
            &format!("{LINK}{}", link_name(message, link)),
            1,
            now,
        )
        .await?;
    }
    Ok(())
}

/// The longest link address a counter names (longer ones are cut on a character).
const MAX_LINK_NAME: usize = 300;

/// What a link's clicks are counted under: its address, as the message had it (so the
/// same link in each language's template counts once), else its index.
fn link_name(message: &Message, index: u32) -> String {
    let found = serde_json::from_str::<Vec<String>>(&message.links)
        .ok()
        .and_then(|links| links.into_iter().nth(index as usize));
    found.map_or_else(
        || index.to_string(),
        |url| ee_core::limits::cut_bytes(&url, MAX_LINK_NAME).to_owned(),
    )
}

use ee_core::campaign::counter::{LANGUAGE, LINK, STEP};

#[derive(Debug, Serialize, ToSchema)]
pub struct Rates {
    /// Bounced ÷ finished (sent, bounced or failed).
    pub bounce: f64,
    /// Complaints ÷ finished.
    pub complaint: f64,
    /// Unique opens ÷ sent.
    pub open: f64,
    /// Unique clicks ÷ sent.
    pub click: f64,
    /// Unsubscribes ÷ sent.
    pub unsubscribe: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HourOut {
    /// The hour's start.
    pub hour: String,
    pub counts: BTreeMap<String, i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignStats {
    pub campaign_id: String,
    /// Recipients in the fixed audience (absent before sending).
    pub recipients: Option<i64>,
    /// Recipients by ledger state.
    pub by_state: BTreeMap<String, i64>,
    /// queued, skipped, sent, deferred (attempts), bounced, failed, opened, opened_unique,
    /// clicked, clicked_unique, unsubscribed, complained.
    pub totals: BTreeMap<String, i64>,
    pub rates: Rates,
    /// Clicks per link, by its address (a message without its links kept: its index).
    pub by_link: BTreeMap<String, i64>,
    /// Messages handed over per language.
    pub by_language: BTreeMap<String, i64>,
    /// An autoresponder's messages handed over per step (its index).
    pub by_step: BTreeMap<String, i64>,
    /// The counters hour by hour.
    pub hourly: Vec<HourOut>,
    /// An A/B test's figures per variant (empty for other campaigns).
    pub by_variant: BTreeMap<String, VariantStats>,
}

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct VariantStats {
    /// Recipients given this variant (the winner's include the rest of the audience).
    pub recipients: i64,
    /// Recipients by ledger state.
    pub by_state: BTreeMap<String, i64>,
    /// Recipients who opened (machine opens excluded) and who clicked, once each.
    pub opened_unique: i64,
    pub clicked_unique: i64,
}

/// Per-variant figures of an A/B test: the ledger's states and the unique engagement the
/// winner is judged on.
async fn variants(
    conn: &mut AnyConnection,
    campaign: &Campaign,
) -> Result<BTreeMap<String, VariantStats>, AppError> {
    let mut out: BTreeMap<String, VariantStats> = BTreeMap::new();
    if campaign.kind != ee_core::campaign::CampaignKind::AbTest {
        return Ok(out);
    }
    for (variant, state, n) in store::variant_states(conn, &campaign.id).await? {
        let v = out.entry(variant).or_default();
        v.recipients += n;
        v.by_state.insert(state, n);
    }
    for (variant, n) in store::variant_engagement(conn, &campaign.id, "opened").await? {
        out.entry(variant).or_default().opened_unique = n;
    }
    for (variant, n) in store::variant_engagement(conn, &campaign.id, "clicked").await? {
        out.entry(variant).or_default().clicked_unique = n;
    }
    Ok(out)
}

/// Takes the counters named `<prefix><key>` out of `totals`, by key.
fn breakdown(totals: &mut BTreeMap<String, i64>, prefix: &str) -> BTreeMap<String, i64> {
    let keys: Vec<String> = totals
        .keys()
        .filter(|k| k.starts_with(prefix))
        .cloned()
        .collect();
    keys.into_iter()
        .filter_map(|k| Some((k[prefix.len()..].to_owned(), totals.remove(&k)?)))
        .collect()
}

fn ratio(n: i64, of: i64) -> f64 {
    if of <= 0 { 0.0 } else { n as f64 / of as f64 }
}

/// Bounced, complained and finished (sent, bounced or failed) from the totals.
fn judged(totals: &BTreeMap<String, i64>) -> (i64, i64, i64) {
    let get = |k: &str| totals.get(k).copied().unwrap_or(0);
    let finished = get("sent") + get("bounced") + get("failed");
    (finished, get("bounced"), get("complained"))
}

async fn totals_of(
    conn: &mut AnyConnection,
    campaign_id: &str,
) -> Result<BTreeMap<String, i64>, AppError> {
    Ok(store::totals(conn, campaign_id)
        .await?
        .into_iter()
        .collect())
}

/// The figures of a campaign.
pub async fn stats(
    read: &mut crate::read::Read,
    campaign: &Campaign,
) -> Result<CampaignStats, AppError> {
    let conn = read.conn();
    let by_state = store::recipient_counts(conn, &campaign.id)
        .await?
        .into_iter()
        .collect();
    let mut totals = totals_of(conn, &campaign.id).await?;
    // Every counter, zeros included: a client need not guess what an absent one means.
    for name in COUNTERS {
        totals.entry((*name).to_owned()).or_insert(0);
    }
    let by_link = breakdown(&mut totals, LINK);
    let by_language = breakdown(&mut totals, LANGUAGE);
    let by_step = breakdown(&mut totals, STEP);
    let mut hours: BTreeMap<i64, BTreeMap<String, i64>> = BTreeMap::new();
    for (hour, name, value) in store::hourly(conn, &campaign.id).await? {
        hours.entry(hour).or_default().insert(name, value);
    }
    let by_variant = variants(conn, campaign).await?;
    let (finished, bounced, complained) = judged(&totals);
    let get = |k: &str| totals.get(k).copied().unwrap_or(0);
    let sent = get("sent");
    Ok(CampaignStats {
        campaign_id: campaign.id.clone(),
        recipients: campaign.audience_count,
        by_state,
        rates: Rates {
            bounce: ratio(bounced, finished),
            complaint: ratio(complained, finished),
            open: ratio(get("opened_unique"), sent),
            click: ratio(get("clicked_unique"), sent),
            unsubscribe: ratio(get("unsubscribed"), sent),
        },
        by_link,
        by_language,
        by_step,
        hourly: hours
            .into_iter()
            .map(|(hour, counts)| HourOut {
                hour: to_rfc3339(hour),
                counts,
            })
            .collect(),
        totals,
        by_variant,
    })
}

/// Whether a sending campaign's bounce or complaint rate passed its tenant's threshold
/// over the minimum sample (a read: the dispatcher asks before each batch, and writes only
/// when it did).
pub async fn over_threshold(
    conn: &mut AnyConnection,
    campaign: &Campaign,
) -> Result<bool, AppError> {
    if campaign.status != CampaignStatus::Sending {
        return Ok(false);
    }
    let tenant = ee_store::tenants::get(conn, &campaign.tenant_id).await?;
    let thresholds = crate::delivery::tenant_delivery(&tenant).campaign_auto_pause;
    let totals = totals_of(conn, &campaign.id).await?;
    let (finished, bounced, complained) = judged(&totals);
    Ok(thresholds.breached(finished, bounced, complained).is_some())
}

/// Pauses a sending campaign whose bounce or complaint rate passed its tenant's threshold
/// over the minimum sample, audited and with an alert. Returns whether it did.
pub async fn auto_pause_if_over(w: &mut Write, campaign: &Campaign) -> Result<bool, AppError> {
    if campaign.status != CampaignStatus::Sending {
        return Ok(false);
    }
    let tenant = ee_store::tenants::get(&mut w.tx, &campaign.tenant_id).await?;
    let thresholds = crate::delivery::tenant_delivery(&tenant).campaign_auto_pause;
    let totals = totals_of(&mut w.tx, &campaign.id).await?;
    let (finished, bounced, complained) = judged(&totals);
    let Some(reason) = thresholds.breached(finished, bounced, complained) else {
        return Ok(false);
    };
    let moved = store::set_status(
        &mut w.tx,
        &campaign.id,
        CampaignStatus::Sending,
        CampaignStatus::AutoPaused,
        Some(&reason),
        w.now,
    )
    .await?;
    if !moved {
        return Ok(false);
    }
    let after = CampaignOut::from(w.find::<Campaign>(&campaign.id).await?);
    w.changed(
        "campaign.auto_pause",
        &CampaignOut::from(campaign.clone()),
        &after,
    )
    .await?;
    let message = format!(
        "Campaign \"{}\" paused itself: {reason}. Its queued messages wait; resume it once \
         the cause is found.",
        campaign.name
    );
    crate::infra::alerts::raise(
        &mut w.tx,
        crate::infra::alerts::AlertSpec {
            tenant_id: Some(&campaign.tenant_id),
            cause: &format!("campaign_auto_pause:{}", campaign.id),
            severity: ee_core::alert::Severity::Critical,
            title: "Campaign paused: bounce or complaint rate over its threshold",
            message: &message,
        },
        w.now,
    )
    .await?;
    Ok(true)
}
