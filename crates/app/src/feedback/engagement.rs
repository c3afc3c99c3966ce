//! Opens and clicks recorded: each hit kept with its time, IP and user agent, judged a
//! person's or a machine's (`core::machine_hits`), and counted apart: a person's first
//! open or click of a message is a unique one, later ones repeats; a machine's go to their
//! own counters and events, never to the contact's engagement or an A/B test's judge.
//! Hits are written in batches: the recorder commits whatever arrived while the previous
//! batch was written in one transaction, and each request waits for its batch's commit
//! (durable before the answer, one commit for many hits).

use std::collections::HashSet;

use ee_core::ids::new_id;
use ee_core::machine_hits::{Hit, HitKind};
use ee_store::messages::{self, Message};
pub use ee_store::tracking_hits::HitRow;
use ee_store::tracking_hits::{self, NewHit};
use ee_store::{AnyConnection, Scope};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use crate::read::Read;
use crate::{AppError, Services};

/// A hit as the tracking endpoint saw it.
#[derive(Debug, Clone)]
pub struct HitIn {
    pub message: Message,
    pub kind: HitKind,
    /// A click's link (its index in the message) and where it leads.
    pub link: Option<u32>,
    pub url: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub head: bool,
    pub decoy: bool,
    pub at: i64,
}

/// Records hits in one transaction.
pub async fn record_hits(services: &Services, hits: &[HitIn]) -> Result<(), AppError> {
    let mut tx = services.db.begin().await?;
    let mut seen: HashSet<(String, &'static str)> = HashSet::new();
    let mut rows = Vec::with_capacity(hits.len());
    for hit in hits {
        rows.push(record_one(&mut tx, services, hit, &mut seen).await?);
    }
    tracking_hits::insert_many(&mut tx, &rows).await?;
    tx.commit().await?;
    Ok(())
}

async fn record_one(
    conn: &mut AnyConnection,
    services: &Services,
    hit: &HitIn,
    seen: &mut HashSet<(String, &'static str)>,
) -> Result<NewHit, AppError> {
    let message = &hit.message;
    let ip = hit.ip.as_deref().and_then(|i| i.parse().ok());
    let reason = services.delivery.machine.machine_reason(&Hit {
        kind: hit.kind,
        head: hit.head,
        decoy: hit.decoy,
        user_agent: hit.user_agent.as_deref(),
        ip,
        since_sent_ms: message.sent_at.map(|s| hit.at - s),
    });
    let machine = reason.is_some();
    let event: &'static str = match (hit.kind, machine) {
        (HitKind::Open, false) => "opened",
        (HitKind::Click, false) => "clicked",
        (HitKind::Open, true) => "opened_machine",
        (HitKind::Click, true) => "clicked_machine",
    };
    let repeat = !seen.insert((message.id.clone(), event))
        || messages::has_event(&mut *conn, &message.id, event).await?;
    let detail = json!({"message_id": message.id, "link": hit.link, "url": hit.url, "machine_reason": reason});
    messages::add_event(
        &mut *conn,
        message,
        event,
        None,
        Some(&detail.to_string()),
        None,
        hit.at,
    )
    .await?;
    if machine {
        if let Some(campaign) = &message.campaign_id {
            ee_store::campaigns::count(&mut *conn, campaign, event, 1, hit.at).await?;
        }
    } else {
        if let Some(contact) = &message.contact_id {
            ee_store::contacts::add_event(
                &mut *conn,
                &message.tenant_id,
                contact,
                &event.to_ascii_uppercase(),
                message.campaign_id.as_deref(),
                &detail,
                hit.at,
            )
            .await?;
            ee_store::contacts::touch_engagement(&mut *conn, contact, hit.at).await?;
        }
        crate::campaigns::stats::record_engagement(
            &mut *conn, message, event, !repeat, hit.link, hit.at,
        )
        .await?;
    }
    let key = crate::feedback::report_counts::key_of_message(message, None, hit.at);
    let mut counts = vec![(key.clone(), event, 1)];
    if !machine && !repeat {
        counts.push((
            key,
            match hit.kind {
                HitKind::Open => "opened_unique",
                HitKind::Click => "clicked_unique",
            },
            1,
        ));
    }
    crate::feedback::report_counts::add(&mut *conn, counts).await?;
    Ok(NewHit {
        id: new_id(),
        tenant_id: message.tenant_id.clone(),
        message_id: message.id.clone(),
        campaign_id: message.campaign_id.clone(),
        contact_id: message.contact_id.clone(),
        kind: hit.kind,
        link: hit.link.map(i64::from),
        url: hit.url.clone(),
        ip: hit.ip.clone(),
        user_agent: hit.user_agent.clone(),
        machine,
        machine_reason: reason,
        repeat,
        occurred_at: hit.at,
    })
}

type Pending = (HitIn, oneshot::Sender<Result<(), String>>);

/// Hands hits to the batch writer and waits for their commit.
#[derive(Clone)]
pub struct HitRecorder {
    tx: mpsc::Sender<Pending>,
}

/// At most this many hits per transaction.
const BATCH: usize = 500;

impl HitRecorder {
    /// Starts the writer on the current runtime.
    pub fn spawn(services: Services) -> Self {
        let (tx, mut rx) = mpsc::channel::<Pending>(4 * BATCH);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(more) => batch.push(more),
                        Err(_) => break,
                    }
                }
                let (hits, waiting): (Vec<HitIn>, Vec<_>) = batch.into_iter().unzip();
                let result = record_hits(&services, &hits)
                    .await
                    .map_err(|e| e.to_string());
                if let Err(e) = &result {
                    tracing::warn!(error = %e, hits = hits.len(), "tracking hits not written");
                }
                for w in waiting {
                    let _ = w.send(result.clone());
                }
            }
        });
        Self { tx }
    }

    /// Records a hit; returns once it is committed.
    pub async fn record(&self, hit: HitIn) -> Result<(), AppError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send((hit, done))
            .await
            .map_err(|_| AppError::Internal("the tracking writer has stopped".into()))?;
        wait.await
            .map_err(|_| AppError::Internal("the tracking writer has stopped".into()))?
            .map_err(AppError::Internal)
    }
}

/// The message a tracking or unsubscribe link names (its token verified by the door), in
/// whichever tenant; a message that is gone is a link "not found".
pub async fn message_of(read: &mut Read, message_id: &str) -> Result<Message, AppError> {
    messages::get(read.conn(), message_id, Scope::All)
        .await
        .map_err(AppError::from_store("link"))
}

/// A message's opens and clicks as they came.
pub async fn hits(read: &mut Read, message: &Message) -> Result<Vec<HitRow>, AppError> {
    Ok(tracking_hits::of_message(read.conn(), &message.id).await?)
}

/// The language of the message's contact, if it has one and it can be read (the
/// unsubscribe pages speak it).
pub async fn contact_language(read: &mut Read, message: &Message) -> Option<String> {
    let id = message.contact_id.as_deref()?;
    ee_store::contacts::get(read.conn(), id, Scope::Tenant(&message.tenant_id))
        .await
        .ok()
        .and_then(|c| c.language)
}
