//! RSS campaigns' checks (the `scheduled.rss_feeds` job): each sending rss campaign whose
//! check is due has its feed fetched (the outbound rule, a timeout, a byte limit) and
//! read; the items it did not send yet (at most `ee_core::rss::MAX_ITEMS_PER_RUN`, the
//! newest) make one run: its template rendered with the `[RSS_ITEMS]` block, one message
//! queued per contact of the audience as it is now. A check that finds nothing new sends
//! nothing; one that fails records why on the campaign and sends nothing.
//!
//! The run and its items are recorded before its messages are queued: a node that dies
//! in between leaves the rest of that run unsent rather than sending the items twice.
//! Each message's idempotency key is `rss:<campaign>:<run>:<contact>`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ee_core::delivery::MessageKind;
use ee_core::rss::{self, FETCH_TIMEOUT_SECS, MAX_FEED_BYTES};
use ee_store::campaign_feeds::{self as feeds, Feed, SentItem};
use ee_store::campaigns::Campaign;
use ee_store::{Scope, StoreError};
use serde::Serialize;

use crate::campaigns::{Audience, CampaignSettings};
use crate::queue::messages::{SendRequest, queue};
use crate::{AppError, Services};

/// The most feeds checked per pass.
const FEEDS_PER_PASS: i64 = 20;
/// Contacts read at a time when a run is queued.
const PAGE: i64 = 500;

/// What a pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Checks {
    pub checked: usize,
    pub runs: usize,
    pub queued: usize,
    pub failed: usize,
}

/// Checks every due feed once.
pub async fn check_due(services: &Services) -> Result<Checks, AppError> {
    let now = services.clock.now_ms();
    let mut conn = services.db.pool().acquire().await?;
    let due = feeds::due(&mut conn, now, FEEDS_PER_PASS).await?;
    drop(conn);
    let mut done = Checks::default();
    for feed in due {
        match check(services, &feed, now).await? {
            Outcome::Taken => {}
            Outcome::Nothing => done.checked += 1,
            Outcome::Failed => {
                done.checked += 1;
                done.failed += 1;
            }
            Outcome::Run(queued) => {
                done.checked += 1;
                done.runs += 1;
                done.queued += queued;
            }
        }
    }
    if done.queued > 0 {
        services.queued.notify_one();
    }
    Ok(done)
}

enum Outcome {
    /// Another node took the check.
    Taken,
    Nothing,
    Failed,
    Run(usize),
}

async fn check(services: &Services, feed: &Feed, now: i64) -> Result<Outcome, AppError> {
    let mut conn = services.db.pool().acquire().await?;
    let campaign = ee_store::campaigns::get(&mut conn, &feed.campaign_id, Scope::All).await?;
    drop(conn);
    let Some(settings) = CampaignSettings::of(&campaign).rss else {
        return Ok(Outcome::Taken);
    };
    let next = now.saturating_add(i64::from(settings.interval_minutes) * 60_000);
    let mut tx = services.db.begin().await?;
    let claimed = feeds::claim(&mut tx, &campaign.id, feed.next_check_at, next).await?;
    tx.commit().await.map_err(StoreError::from)?;
    if !claimed {
        return Ok(Outcome::Taken);
    }
    let read = ee_connectors::feeds::fetch(
        &services.outbound,
        &settings.url,
        MAX_FEED_BYTES,
        Duration::from_secs(FETCH_TIMEOUT_SECS),
    )
    .await
    .and_then(|bytes| rss::parse(&bytes));
    let items = match read {
        Ok(items) => items,
        Err(why) => return failed(services, &campaign, &why, now).await,
    };
    let mut conn = services.db.pool().acquire().await?;
    let sent: BTreeSet<String> = feeds::sent_keys(&mut conn, &campaign.id)
        .await?
        .into_iter()
        .collect();
    let fresh = rss::new_items(items, &sent);
    if fresh.is_empty() {
        drop(conn);
        let mut tx = services.db.begin().await?;
        feeds::checked(&mut tx, &campaign.id, None, now).await?;
        tx.commit().await.map_err(StoreError::from)?;
        return Ok(Outcome::Nothing);
    }
    let template_id = campaign.template_id.clone().unwrap_or_default();
    let template =
        match ee_store::templates::get(&mut conn, &template_id, Scope::Tenant(&campaign.tenant_id))
            .await
        {
            Ok(t) => t,
            Err(StoreError::NotFound) => {
                drop(conn);
                let why = "the campaign's template no longer exists";
                return failed(services, &campaign, why, now).await;
            }
            Err(e) => return Err(e.into()),
        };
    let audience: Audience = serde_json::from_str(&campaign.audience).unwrap_or_default();
    let expr = match crate::campaigns::audience_expr(&mut conn, &campaign.tenant_id, &audience, now)
        .await
    {
        Ok(expr) => expr,
        Err(AppError::Invalid(e)) => {
            drop(conn);
            let why = format!("the audience: {e}");
            return failed(services, &campaign, &why, now).await;
        }
        Err(e) => return Err(e),
    };
    drop(conn);
    let html = rss::render(&template.html_content, &fresh, true);
    let text = template
        .text_content
        .as_deref()
        .map(|t| rss::render(t, &fresh, false));
    let titles: Vec<&str> = fresh.iter().map(|i| i.title.as_str()).collect();
    let titles = serde_json::to_string(&titles).unwrap_or_else(|_| "[]".into());
    let kept: Vec<SentItem<'_>> = fresh
        .iter()
        .map(|i| SentItem {
            key: &i.key,
            link: &i.link,
            published_at: i.published_ms,
        })
        .collect();
    let mut tx = services.db.begin().await?;
    let run = feeds::add_run(&mut tx, &campaign.id, &kept, &titles, now).await?;
    feeds::checked(&mut tx, &campaign.id, None, now).await?;
    tx.commit().await.map_err(StoreError::from)?;

    let base = SendRequest {
        tenant_id: campaign.tenant_id.clone(),
        kind: MessageKind::Campaign,
        campaign_id: Some(campaign.id.clone()),
        to_email: String::new(),
        to_name: None,
        template: None,
        category: None,
        language: Some(template.language.clone()),
        variables: BTreeMap::new(),
        subject: Some(template.subject.clone()),
        html: Some(html),
        text,
        from_email: template.from_email.clone(),
        from_name: template.from_name.clone(),
        reply_to: template.reply_to.clone(),
        headers: BTreeMap::new(),
        idempotency_key: None,
        send_at: None,
        track_opens: None,
        track_clicks: None,
    };
    let mut queued = 0usize;
    let mut after = String::new();
    loop {
        let mut conn = services.db.pool().acquire().await?;
        let page = feeds::audience_page(
            &mut conn,
            &campaign.tenant_id,
            expr.as_ref(),
            &after,
            PAGE,
            now,
        )
        .await?;
        drop(conn);
        let Some(last) = page.last() else { break };
        after = last.id.clone();
        for contact in &page {
            let request = SendRequest {
                to_email: contact.email.clone(),
                idempotency_key: Some(format!("rss:{}:{run}:{}", campaign.id, contact.id)),
                ..base.clone()
            };
            match queue(services, request).await {
                Ok(_) => queued += 1,
                Err(e) => {
                    tracing::warn!(campaign = %campaign.id, run, error = %e, "rss run: a message not queued");
                }
            }
        }
    }
    let mut tx = services.db.begin().await?;
    feeds::set_recipients(
        &mut tx,
        &campaign.id,
        run,
        i64::try_from(queued).unwrap_or(i64::MAX),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Outcome::Run(queued))
}

/// Records why a check sent nothing.
async fn failed(
    services: &Services,
    campaign: &Campaign,
    why: &str,
    now: i64,
) -> Result<Outcome, AppError> {
    tracing::info!(campaign = %campaign.id, reason = why, "rss feed not read");
    let mut tx = services.db.begin().await?;
    feeds::checked(&mut tx, &campaign.id, Some(why), now).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Outcome::Failed)
}
