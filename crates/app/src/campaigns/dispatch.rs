//! The campaign dispatcher: scheduled campaigns start when their time comes, and sending
//! campaigns hand their recipients to the message queue a batch at a time, the least
//! recently served campaign first, keeping only a few batches of each in the queue (the
//! throttle and the sending window hold where messages meet a transport: `campaign_pace`). Every node may run it: the status is
//! read from the database before each batch (so pause and cancel hold within one batch),
//! and a recipient's message has an idempotency key made of the campaign, the contact and
//! the recipient's attempt, so a batch run twice (two nodes, a crash between the message
//! and the ledger) still gives each recipient one message.

use ee_core::auth::Actor;
use ee_core::campaign::{CampaignAction, CampaignKind, CampaignStatus};
use ee_store::Scope;
use ee_store::campaigns::{self as store, Campaign};

use crate::audit::{Caller, Origin};
use crate::campaigns::settings::CampaignSettings;
use crate::campaigns::view::CampaignOut;
use crate::delivery::mailwizz::MwError;
use crate::write::Write;
use crate::{AppError, Services};

/// The most recipients one campaign hands over per pass.
pub const BATCH: i64 = 200;
/// The most messages of one campaign kept in the queue (no body is stored with them):
/// a few of its batches, and at least four of the delivery engine's claims (`backlog`).
const BACKLOG: i64 = 5 * BATCH;
/// The most campaigns served per pass.
const CAMPAIGNS_PER_PASS: i64 = 50;

/// How many messages of one campaign the queue may hold: `BACKLOG`, or four of the
/// engine's claims if more, so that one is claimed while another is sent and the
/// dispatcher refills behind them (a pass hands over `BATCH` at a time). With a claim
/// of 500 and a backlog of 1 000, the second claim found the queue empty about every
/// other time and the engine sent one batch at a time (RSA-signed campaign: ~10 % slower).
fn backlog(services: &Services) -> i64 {
    BACKLOG.max(services.delivery.batch.saturating_mul(4))
}

fn dispatcher() -> Caller {
    Caller {
        actor: Actor::system("campaign dispatcher"),
        origin: Origin::default(),
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub started: usize,
    pub queued: usize,
    pub finished: usize,
    /// A/B tests whose winner was chosen.
    pub decided: usize,
    /// Campaigns with recipients left whose share of the queue is full and being sent:
    /// the dispatcher looks again soon rather than after its idle pause.
    pub draining: usize,
}

impl Pass {
    /// Whether the pass changed anything (a pass that only found full queues did not).
    pub fn did_work(&self) -> bool {
        self.started + self.queued + self.finished + self.decided > 0
    }
}

/// What serving one campaign did.
#[derive(Debug, Default)]
struct Served {
    queued: usize,
    finished: bool,
    decided: bool,
    draining: bool,
}

/// One pass: due campaigns started, each sending campaign served once.
pub async fn run_once(services: &Services) -> Result<Pass, AppError> {
    let now = services.clock.now_ms();
    let mut pass = Pass::default();
    let mut conn = services.db.pool().acquire().await?;
    let due = store::due(&mut conn, now, CAMPAIGNS_PER_PASS).await?;
    let sending = store::sending(&mut conn, CAMPAIGNS_PER_PASS).await?;
    drop(conn);
    for campaign in due {
        if start_due(services, &campaign.id, now).await? {
            pass.started += 1;
        }
    }
    for campaign in sending {
        let served = serve(services, &campaign).await?;
        pass.queued += served.queued;
        pass.finished += usize::from(served.finished);
        pass.decided += usize::from(served.decided);
        pass.draining += usize::from(served.draining);
    }
    // Pause, resume and cancel followed by the mirrors in MailWizz.
    match crate::campaigns::mailwizz::reconcile(services).await {
        Ok(_) => {}
        Err(MwError::Store(e)) => return Err(e.into()),
        Err(e) => tracing::warn!(error = %e, "MailWizz mirror not paused or resumed"),
    }
    Ok(pass)
}

/// Starts a scheduled campaign whose time has come; one that can no longer send (its
/// template or segment was deleted) pauses with the reason instead.
async fn start_due(services: &Services, id: &str, now: i64) -> Result<bool, AppError> {
    let mut w = Write::open(&services.db, dispatcher(), None, now).await?;
    let campaign: Campaign = w.find(id).await?;
    if campaign.status != CampaignStatus::Scheduled {
        return Ok(false);
    }
    let started = crate::campaigns::act(&mut w, id, CampaignAction::Start, None).await;
    match started {
        Ok(_) => {
            w.finish().await?;
            Ok(true)
        }
        Err(AppError::Invalid(_) | AppError::Conflict(_) | AppError::NotFound(_)) => {
            drop(w);
            let reason = match started {
                Err(e) => format!("could not start: {e}"),
                Ok(_) => unreachable!(),
            };
            let mut w = Write::open(&services.db, dispatcher(), None, now).await?;
            let before = CampaignOut::from(campaign.clone());
            if store::set_status(
                &mut w.tx,
                id,
                CampaignStatus::Scheduled,
                CampaignStatus::AutoPaused,
                Some(&reason),
                now,
            )
            .await?
            {
                let after = CampaignOut::from(w.find::<Campaign>(id).await?);
                w.changed("campaign.auto_pause", &before, &after).await?;
            }
            w.finish().await?;
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// How many recipients the campaign may hand to the queue now: enough to keep a few
/// batches (at most an hour of its throttle) waiting for the transport, never its whole
/// audience. Its throttle and sending window are applied where the messages meet the
/// transport (`campaign_pace`). Also whether a full queue is being sent (the dispatcher
/// then looks again soon) rather than held by the campaign's pace.
async fn allowance(
    services: &Services,
    campaign: &Campaign,
    now: i64,
) -> Result<(i64, bool), AppError> {
    let settings = CampaignSettings::of(campaign);
    let most = backlog(services);
    let cap = settings
        .throttle
        .map_or(most, |t| i64::from(t.per_hour).min(most));
    let mut conn = services.db.pool().acquire().await?;
    let (waiting, due) = ee_store::handoffs::backlog(&mut conn, &campaign.id, now).await?;
    let limit = (cap - waiting).clamp(0, BATCH);
    Ok((limit, limit == 0 && due > 0))
}

/// Marks the campaign served now (the least recently served goes first). A write, in a
/// transaction: on SQLite it then waits its turn among the node's writers rather than
/// polling the lock (`Db::begin`), which cost each pass milliseconds.
async fn touch(services: &Services, id: &str, now: i64) -> Result<(), AppError> {
    let mut tx = services.db.begin().await?;
    store::touch(&mut tx, id, now).await?;
    tx.commit().await.map_err(ee_store::StoreError::from)?;
    Ok(())
}

/// Serves one sending campaign: a batch of its recipients handed over, or the campaign
/// finished when none is left (an A/B test's winner chosen first).
async fn serve(services: &Services, listed: &Campaign) -> Result<Served, AppError> {
    let now = services.clock.now_ms();
    let mut conn = services.db.pool().acquire().await?;
    // The status as it is now: a pause or a cancel from any node stops the next batch.
    let campaign = store::get(&mut conn, &listed.id, Scope::All).await?;
    // An rss campaign sends a run each time its feed has new items (`campaign_rss_runs`).
    if !campaign.status.dispatching() || campaign.kind == CampaignKind::Rss {
        return Ok(Served::default());
    }
    drop(conn);
    if pause_if_over(services, &campaign, now).await? {
        return Ok(Served::default());
    }
    // A regular campaign of a tenant that delivers through MailWizz is mirrored there.
    match crate::campaigns::mailwizz::target(services, &campaign).await {
        Ok(Some((instance, client))) => {
            return serve_mirrored(services, &campaign, &instance, &client, now).await;
        }
        Ok(None) => {}
        Err(MwError::Store(e)) => return Err(e.into()),
        Err(e) => {
            tracing::warn!(campaign = %campaign.id, error = %e, "campaign not mirrored into MailWizz");
            return Ok(Served::default());
        }
    }
    let mut conn = services.db.pool().acquire().await?;
    let (limit, draining) = allowance(services, &campaign, now).await?;
    touch(services, &campaign.id, now).await?;
    if campaign.kind == CampaignKind::Autoresponder {
        drop(conn);
        let queued = crate::campaigns::autoresponders::serve(services, &campaign, limit).await?;
        if queued > 0 {
            services.queued.notify_one();
        }
        return Ok(Served {
            queued,
            draining,
            ..Served::default()
        });
    }
    if limit == 0 {
        return Ok(Served {
            draining,
            ..Served::default()
        });
    }
    // An A/B test hands over only recipients with a variant: the test share, then, once
    // the winner is known, the rest.
    let ab = campaign.kind == CampaignKind::AbTest;
    let batch = store::pending(&mut conn, &campaign.id, limit, ab).await?;
    drop(conn);
    if batch.is_empty() {
        if ab && decide_winner(services, &campaign, now).await? {
            return Ok(Served {
                decided: true,
                ..Served::default()
            });
        }
        return Ok(Served {
            finished: finish(services, &campaign, now).await?,
            ..Served::default()
        });
    }
    if campaign.template_id.is_none() {
        return Err(AppError::Conflict("the campaign has no template".into()));
    }
    let settings = CampaignSettings::of(&campaign);
    let variants = settings.ab.map(|ab| ab.variants).unwrap_or_default();
    let done = crate::campaigns::queue::queue_batch(services, &campaign, &batch, &variants).await?;
    if done.queued > 0 {
        services.queued.notify_one();
    }
    Ok(Served {
        queued: done.queued,
        ..Served::default()
    })
}

/// A pass over a campaign mirrored into MailWizz (`campaign_mailwizz`; a sequence:
/// `sequence_mailwizz`): a batch handed over, or its figures read back, and a regular
/// campaign finished once MailWizz sent it all.
/// MailWizz being unreachable is logged and tried again on the next pass.
async fn serve_mirrored(
    services: &Services,
    campaign: &Campaign,
    instance: &ee_store::mailwizz::Instance,
    client: &ee_connectors::mailwizz::Client,
    now: i64,
) -> Result<Served, AppError> {
    touch(services, &campaign.id, now).await?;
    if campaign.kind == CampaignKind::Autoresponder {
        // A sequence runs as MailWizz autoresponders until it is cancelled.
        return match crate::campaigns::sequence_mailwizz::serve(
            services, campaign, instance, client, BATCH,
        )
        .await
        {
            Ok(handed) => Ok(Served {
                queued: handed,
                ..Served::default()
            }),
            Err(MwError::Store(e)) => Err(e.into()),
            Err(e) => {
                tracing::warn!(campaign = %campaign.id, error = %e, "MailWizz sequence mirror");
                Ok(Served::default())
            }
        };
    }
    match crate::campaigns::mailwizz::serve(services, campaign, instance, client, BATCH).await {
        Ok(m) if m.finished => Ok(Served {
            finished: finish(services, campaign, now).await?,
            ..Served::default()
        }),
        Ok(m) => Ok(Served {
            queued: m.handed,
            ..Served::default()
        }),
        Err(MwError::Store(e)) => Err(e.into()),
        Err(e) => {
            tracing::warn!(campaign = %campaign.id, error = %e, "MailWizz mirror");
            Ok(Served::default())
        }
    }
}

/// Once an A/B test's share is handed over: its winner, when the wait is over.
async fn decide_winner(
    services: &Services,
    campaign: &Campaign,
    now: i64,
) -> Result<bool, AppError> {
    let mut w = Write::open(&services.db, dispatcher(), None, now).await?;
    let decided = crate::campaigns::ab_tests::decide_if_over(&mut w, campaign).await?;
    w.finish().await?;
    Ok(decided)
}

/// The safety rule, before each batch: a campaign over its bounce or complaint threshold
/// pauses itself (`campaign_stats::auto_pause_if_over`).
async fn pause_if_over(
    services: &Services,
    campaign: &Campaign,
    now: i64,
) -> Result<bool, AppError> {
    let mut conn = services.db.pool().acquire().await?;
    if !crate::campaigns::stats::over_threshold(&mut conn, campaign).await? {
        return Ok(false);
    }
    drop(conn);
    let mut w = Write::open(&services.db, dispatcher(), None, now).await?;
    let paused = crate::campaigns::stats::auto_pause_if_over(&mut w, campaign).await?;
    w.finish().await?;
    Ok(paused)
}

/// Marks a campaign as sent once no recipient is left to hand over and none of its
/// messages waits in the queue (until then, its bounces may still pause it).
async fn finish(services: &Services, campaign: &Campaign, now: i64) -> Result<bool, AppError> {
    let mut w = Write::open(&services.db, dispatcher(), None, now).await?;
    if store::has_pending(&mut w.tx, &campaign.id).await?
        || store::in_flight(&mut w.tx, &campaign.id).await?
    {
        return Ok(false);
    }
    let before = CampaignOut::from(campaign.clone());
    let moved = store::set_status(
        &mut w.tx,
        &campaign.id,
        CampaignStatus::Sending,
        CampaignStatus::Sent,
        None,
        now,
    )
    .await?;
    if moved {
        let after = CampaignOut::from(w.find::<Campaign>(&campaign.id).await?);
        w.changed("campaign.finish", &before, &after).await?;
    }
    w.finish().await?;
    Ok(moved)
}
