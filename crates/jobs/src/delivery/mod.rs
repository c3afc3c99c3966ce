//! The delivery engine: claims batches of due messages under a lease and sends them
//! (IP choice within warm-up quotas and per-provider limits, tracking, DKIM, SMTP by relay
//! or direct to MX over reused connections, or MailWizz), then records each outcome.
//!
//! One concern per file: `context` (what a batch and a tenant need, read once), `routing`
//! (relay, direct to MX or MailWizz; IP choice), `building` (tracking, DKIM, MIME),
//! `outcome` (what an attempt came to, retries, recording), `shaping` (providers' replies
//! slowing a path down).

mod attempt;
mod building;
mod context;
mod endpoints;
mod mta_sts;
mod outcome;
mod provider_rate;
mod relays;
mod routing;
mod shaping;
mod slots;
mod tls_rpt;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ee_app::Services;
use ee_app::delivery::*;
use ee_core::contacts::MxOutcome;
use ee_core::delivery::{self as rules, IpCandidate, MessageState, Provider};
use ee_core::route::Route;
use ee_core::template;
use ee_core::tracking::{self, Kind};
use ee_mail::message::{Outgoing, Signer};
use ee_mail::smtp::{Connection, Endpoint, Security, SmtpError};
use ee_store::messages::{self, Attempt, Message};
use ee_store::{StoreError, contacts as contact_store, domains};
use serde_json::json;
use tokio::sync::{Mutex, Semaphore};

use attempt::{AttemptResult, reply_result};
use context::{BatchContext, TenantContext};
use slots::Open;

type PoolKey = (String, String);

/// A path's connections at a provider: the limit its semaphore was made for, and it.
type Slot = (usize, Arc<Semaphore>);

/// DKIM signers by (tenant, domain): the active key's id (`None`: the domain has no key),
/// its signer, and when the database was last asked.
type SignerCache = HashMap<(String, String), (Option<String>, Option<Arc<Signer>>, i64)>;

/// How long (ms) a node signs with a key before asking which key is active (rotation).
const SIGNER_RECHECK_MS: i64 = 60_000;

/// Outcomes recorded together at most: a batch's are recorded as they come, in groups of
/// this many or within `RECORD_WITHIN` of the first unrecorded one.
const RECORD_EVERY: usize = 50;
const RECORD_WITHIN: Duration = Duration::from_millis(250);

/// Batches a node has in hand at most (see `pipeline`).
const BATCHES_IN_FLIGHT: usize = 4;

/// How long an idle connection is kept for reuse: less than the idle time-outs of common
/// MTAs (Postfix's smtpd waits 300 s), so a kept connection is rarely found closed.
const IDLE_MAX: Duration = Duration::from_secs(30);

/// Delivers the queue: one per node, shared by its delivery loop.
pub struct Engine {
    services: Services,
    /// Messages being sent at once, across the batches in flight.
    gate: Arc<Semaphore>,
    /// Per tenant, its messages being sent at once: one less than the gate, so that a
    /// tenant whose receivers stall cannot take every connection from the others.
    tenant_gates: std::sync::Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Idle connections by (route, source IP / destination), with when each was last used
    /// and the cluster-wide slot each holds.
    idle: Mutex<HashMap<PoolKey, Vec<(Open, std::time::Instant)>>>,
    /// When this node last renewed its connection slots (clock ms), and how its slots'
    /// holders start (`<node>:<engine>:`: an engine renews only its own).
    slots_renewed: std::sync::atomic::AtomicI64,
    slot_prefix: String,
    /// Concurrent connections by path and provider (`lane`'s key), with the limit each
    /// was made for.
    slots: Mutex<HashMap<String, Slot>>,
    /// The traffic-shaping states in force, as last read.
    shaping: Mutex<shaping::ShapingView>,
    /// MTA-STS policies by recipient domain, as this node found them.
    mta_sts: Mutex<HashMap<String, mta_sts::Cached>>,
    signers: Mutex<SignerCache>,
    spin: AtomicUsize,
    /// The second before which this engine last deleted providers' rate counts.
    rates_forgotten: std::sync::atomic::AtomicI64,
}

/// A batch claimed under a lease, with what its messages need.
struct Claimed {
    pub(super) lease: String,
    pub(super) batch: Vec<Message>,
    pub(super) context: Arc<BatchContext>,
}

struct Chosen {
    pub(super) ip_id: Option<String>,
    pub(super) address: Option<IpAddr>,
    pub(super) hostname: Option<String>,
    pub(super) ip_text: Option<String>,
    pub(super) provider: Provider,
    pub(super) day: i64,
    pub(super) hour: i64,
    /// The second of the provider's rate this send took, if it has a rate.
    pub(super) rate_second: Option<i64>,
}

impl Engine {
    pub fn new(services: Services) -> Arc<Self> {
        let slot_prefix = format!("{}:{}:", services.delivery.node, ee_core::ids::new_id());
        Arc::new(Self {
            slot_prefix,
            gate: Arc::new(Semaphore::new(services.delivery.concurrency.max(1))),
            tenant_gates: std::sync::Mutex::new(HashMap::new()),
            services,
            idle: Mutex::new(HashMap::new()),
            slots_renewed: std::sync::atomic::AtomicI64::new(0),
            slots: Mutex::new(HashMap::new()),
            shaping: Mutex::new(shaping::ShapingView::default()),
            mta_sts: Mutex::new(HashMap::new()),
            signers: Mutex::new(HashMap::new()),
            spin: AtomicUsize::new(0),
            rates_forgotten: std::sync::atomic::AtomicI64::new(0),
        })
    }

    /// Claims one batch of due messages and delivers it; the number handled.
    pub async fn run_once(self: &Arc<Self>) -> Result<usize, StoreError> {
        match self.claim().await? {
            Some(claimed) => self.clone().deliver(claimed).await,
            None => Ok(0),
        }
    }

    /// Claims a batch of due messages under a lease, with what it needs read once.
    async fn claim(&self) -> Result<Option<Claimed>, StoreError> {
        let settings = &self.services.delivery;
        let now = self.services.clock.now_ms();
        // A write: on SQLite it takes its turn among the node's writers (`Db::begin`).
        let mut tx = self.services.db.begin().await?;
        let (lease, mut batch) = ee_store::message_leases::claim_due(
            &mut tx,
            self.services.db.backend(),
            &settings.node,
            settings.batch,
            settings.lease_ms,
            now,
        )
        .await?;
        tx.commit().await?;
        if batch.is_empty() {
            return Ok(None);
        }
        // Campaign messages outside their window or over their throttle go back to wait
        // (an empty batch is still a claim: what remains due is claimed next).
        let held = ee_app::campaigns::pace::hold_back(&self.services, &lease, &batch, now).await?;
        batch.retain(|m| !held.contains(&m.id));
        let mut conn = self.services.db.pool().acquire().await?;
        // Campaign messages keep no body: theirs are rendered now, in memory.
        let unrenderable =
            ee_app::queue::bodies::render_at_send(&self.services, &mut conn, &mut batch, now)
                .await?;
        let mut context = BatchContext::load(&self.services, &mut conn, &batch).await?;
        context.unrenderable = unrenderable;
        let context = Arc::new(context);
        Ok(Some(Claimed {
            lease,
            batch,
            context,
        }))
    }

    /// Delivers a claimed batch and records it; the number handled.
    async fn deliver(self: Arc<Self>, claimed: Claimed) -> Result<usize, StoreError> {
        self.close_stale().await;
        let Claimed {
            lease,
            batch,
            context,
        } = claimed;
        // The lease is renewed while this batch is in hand, and only then: if the node
        // dies (or this future is dropped), the renewals stop and the batch's messages are
        // free again when the lease runs out.
        let _heartbeat = AbortOnDrop(tokio::spawn(heartbeat(
            self.services.clone(),
            lease.clone(),
        )));
        let count = batch.len();
        // The attempts run at once (within the node's gate), started in the batch's fair
        // order; their outcomes are recorded as they come, every `RECORD_EVERY` or
        // `RECORD_WITHIN`, not once at the end of the batch: a node that dies loses only
        // the hand-offs of that short while (sent again, with the same Message-ID), and
        // the statistics follow the deliveries closely.
        let mut waiting = batch.into_iter();
        let mut next = waiting.next();
        let mut tasks = tokio::task::JoinSet::new();
        let mut done: Vec<(Message, AttemptResult)> = Vec::new();
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                biased;
                permit = self.gate.clone().acquire_owned(), if next.is_some() => {
                    let Some(message) = next.take() else { continue };
                    next = waiting.next();
                    let engine = self.clone();
                    let context = context.clone();
                    let tenant_gate = self.tenant_gate(&message.tenant_id);
                    match tenant_gate.clone().try_acquire_owned() {
                        // Within its tenant's share: sent now, in the batch's order.
                        Ok(tenant_permit) => tasks.spawn(async move {
                            let _permits = (permit, tenant_permit);
                            let result = engine.attempt_logged(&context, &message).await;
                            (message, result)
                        }),
                        // Its tenant holds its whole share: it waits for its tenant, and
                        // the connection goes to the next message meanwhile.
                        Err(_) => {
                            drop(permit);
                            tasks.spawn(async move {
                                let tenant_permit = tenant_gate.acquire_owned().await;
                                let permit = engine.gate.clone().acquire_owned().await;
                                let _permits = (permit, tenant_permit);
                                let result = engine.attempt_logged(&context, &message).await;
                                (message, result)
                            })
                        }
                    };
                }
                Some(joined) = tasks.join_next() => {
                    match joined {
                        Ok((message, Ok(result))) => done.push((message, result)),
                        Ok((message, Err(e))) => {
                            // Left under its lease: taken up again when the lease runs out.
                            tracing::warn!(message = %message.id, error = %e, "delivery attempt failed");
                        }
                        Err(e) => tracing::error!(error = %e, "a delivery task panicked"),
                    }
                    if done.len() >= RECORD_EVERY {
                        self.record_done(&lease, std::mem::take(&mut done)).await?;
                        deadline = None;
                    } else if !done.is_empty() && deadline.is_none() {
                        deadline = Some(tokio::time::Instant::now() + RECORD_WITHIN);
                    }
                }
                () = sleep_until(deadline), if deadline.is_some() => {
                    self.record_done(&lease, std::mem::take(&mut done)).await?;
                    deadline = None;
                }
                else => break,
            }
        }
        if !done.is_empty() {
            self.record_done(&lease, done).await?;
        }
        Ok(count)
    }

    /// The gate of a tenant's messages on this node (see `tenant_gates`).
    fn tenant_gate(&self, tenant_id: &str) -> Arc<Semaphore> {
        let share = self.services.delivery.concurrency.saturating_sub(1).max(1);
        let mut gates = self
            .tenant_gates
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        gates
            .entry(tenant_id.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(share)))
            .clone()
    }

    /// One attempt, with one structured line to follow sending in the logs (the
    /// recipient's domain only: the address is personal data).
    async fn attempt_logged(
        &self,
        context: &BatchContext,
        message: &Message,
    ) -> Result<AttemptResult, StoreError> {
        let started = std::time::Instant::now();
        let result = self.attempt(context, message).await;
        if let Ok(r) = &result {
            tracing::info!(
                message_id = %message.id,
                recipient_domain = domain_of(&message.to_email),
                ip_id = r.ip_id.as_deref().unwrap_or(""),
                route = r.route.as_ref().map(Route::to_string).unwrap_or_default(),
                code = r.code.unwrap_or(0),
                state = r.state.as_str(),
                duration_ms = started.elapsed().as_millis() as u64,
                "delivery attempt"
            );
        }
        result
    }

    /// Records attempts' outcomes in one transaction: states, events and what follows
    /// (successes, their events and their contacts' timelines, in bulk), the reports'
    /// counters and the campaigns'.
    async fn record_done(
        &self,
        lease: &str,
        done: Vec<(Message, AttemptResult)>,
    ) -> Result<(), StoreError> {
        let now = self.services.clock.now_ms();
        let (plain, rest): (Vec<_>, Vec<_>) = done
            .iter()
            .partition(|(_, result)| result.state == MessageState::Sent && result.code.is_some());
        let sent: Vec<messages::Sent<'_>> = plain
            .iter()
            .map(|(message, result)| messages::Sent {
                message,
                code: result.code.unwrap_or(250),
                reply: result.reply.as_deref().unwrap_or(""),
                ip_id: result.ip_id.as_deref(),
                route: result
                    .route
                    .as_ref()
                    .map(Route::to_string)
                    .unwrap_or_default(),
                links: result.links.as_deref().unwrap_or("[]"),
                tls: result.tls.as_deref(),
                mta_sts: result.mta_sts.as_deref(),
            })
            .collect();
        let mut tx = self.services.db.begin_bulk().await?;
        messages::finish_sent_many(&mut tx, lease, &sent, now).await?;
        for (message, result) in rest {
            self.record(&mut tx, message, lease, result, now).await?;
        }
        // The reports' counters: handed over, and delivered when it went straight to the
        // recipient's server (a relay's deliveries come back as feedback).
        let mut counts: Vec<(ee_store::report_counters::CounterKey, &'static str, i64)> =
            Vec::new();
        for (m, r) in done.iter().filter(|(_, r)| r.state == MessageState::Sent) {
            let key = ee_app::feedback::report_counts::key_of_message(m, r.ip_id.as_deref(), now);
            if matches!(r.route, Some(Route::Direct)) {
                counts.push((key.clone(), "delivered", 1));
            }
            // Over TLS, and with the peer's certificate verified: the share by provider.
            if let Some(tls) = &r.tls {
                counts.push((key.clone(), "sent_tls", 1));
                if tls.ends_with(" verified") {
                    counts.push((key.clone(), "sent_tls_verified", 1));
                }
            }
            counts.push((key, "sent", 1));
        }
        // Deferred by the receiving server's reply (not held back by us): the reports'
        // deferral rate by provider and IP.
        for (m, r) in done
            .iter()
            .filter(|(_, r)| r.state == MessageState::Deferred && !r.uncounted && r.code.is_some())
        {
            let key = ee_app::feedback::report_counts::key_of_message(m, r.ip_id.as_deref(), now);
            counts.push((key, "deferred", 1));
        }
        ee_app::feedback::report_counts::add(&mut tx, counts).await?;
        // The TLS reports' sessions (RFC 8460), by the day they happened.
        let day = ee_core::tls_rpt::day_of(now);
        for (tenant, sessions) in tls_rpt::count(done.iter().map(|(m, r)| (m, r))) {
            ee_store::tls_reports::add_sessions(&mut tx, tenant, &day, &sessions).await?;
        }
        // The campaigns' counters, in the same transaction.
        ee_app::campaigns::stats::record_outcomes(
            &mut tx,
            done.iter().map(|(message, result)| (message, result.state)),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Claims and delivers batches until nothing is due (`stop` aside); the number handled.
    ///
    /// Batches overlap: a new one is claimed while the gate has a free connection (up to
    /// `BATCHES_IN_FLIGHT`), so the database work does not stall the connections, and a
    /// batch whose receivers stall (until the time-out) holds only its own connections,
    /// not the node's next claims. A crash leaves unrecorded what was in its SMTP
    /// conversations and the hand-offs not yet recorded (fewer than `RECORD_EVERY` per
    /// batch, of the last `RECORD_WITHIN`): those are sent again, with the same
    /// Message-ID, after the lease. (See `heartbeat` for how a lease outlives a slow
    /// receiver.)
    async fn pipeline(
        self: &Arc<Self>,
        stop: Option<&tokio::sync::watch::Receiver<bool>>,
    ) -> Result<usize, StoreError> {
        let mut total = 0;
        let mut batches: tokio::task::JoinSet<Result<usize, StoreError>> =
            tokio::task::JoinSet::new();
        let finished = |joined: Result<Result<usize, StoreError>, tokio::task::JoinError>| {
            joined.unwrap_or_else(|e| {
                tracing::error!(error = %e, "a delivery batch panicked");
                Ok(0)
            })
        };
        loop {
            self.renew_slots().await;
            let stopping = stop.is_some_and(|s| *s.borrow());
            let room = !stopping
                && batches.len() < BATCHES_IN_FLIGHT
                && (batches.is_empty() || self.gate.available_permits() > 0);
            if room && let Some(claimed) = self.claim().await? {
                batches.spawn(self.clone().deliver(claimed));
                continue;
            }
            if batches.is_empty() {
                return Ok(total);
            }
            // A batch ends (what it deferred may be due again: look once more), or, while
            // batches run, a connection frees up for the next claim.
            tokio::select! {
                Some(joined) = batches.join_next() => total += finished(joined)?,
                () = tokio::time::sleep(Duration::from_millis(100)), if !stopping => {}
            }
        }
    }

    /// Runs batches until nothing is due; the number handled.
    pub async fn run_until_idle(self: &Arc<Self>) -> Result<usize, StoreError> {
        self.pipeline(None).await
    }

    /// The node's delivery loop, until `stop` turns true.
    pub async fn run(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.pipeline(Some(&stop)).await {
                tracing::error!(error = %e, "delivery batch failed");
            }
            if *stop.borrow() {
                break;
            }
            // Idle, the node still closes its stale connections and keeps its slots.
            self.close_stale().await;
            self.renew_slots().await;
            let queued = self.services.queued.clone();
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = queued.notified() => {}
                _ = stop.changed() => {}
            }
        }
        self.close_idle().await;
    }

    /// Closes the idle connections (QUIT).
    pub async fn close_idle(&self) {
        let all: Vec<Open> = self
            .idle
            .lock()
            .await
            .drain()
            .flat_map(|(_, v)| v.into_iter().map(|(c, _)| c))
            .collect();
        for open in all {
            open.close().await;
        }
    }

    /// Closes connections idle for longer than `IDLE_MAX`: peers drop idle sessions (and
    /// a dropped one would sit in CLOSE-WAIT here until reused).
    async fn close_stale(&self) {
        let mut stale = Vec::new();
        {
            let mut idle = self.idle.lock().await;
            for list in idle.values_mut() {
                let (keep, old): (Vec<_>, Vec<_>) = list
                    .drain(..)
                    .partition(|(_, since)| since.elapsed() < IDLE_MAX);
                *list = keep;
                stale.extend(old.into_iter().map(|(c, _)| c));
            }
            idle.retain(|_, list| !list.is_empty());
        }
        for open in stale {
            open.close().await;
        }
    }

    /// An idle connection of `key` used recently enough to be worth trying.
    async fn take_idle(&self, key: &PoolKey) -> Option<Open> {
        let mut idle = self.idle.lock().await;
        let list = idle.get_mut(key)?;
        while let Some((connection, since)) = list.pop() {
            if since.elapsed() < IDLE_MAX {
                return Some(connection);
            }
        }
        None
    }

    async fn put_idle(&self, key: &PoolKey, connection: Open) {
        self.idle
            .lock()
            .await
            .entry(key.clone())
            .or_default()
            .push((connection, std::time::Instant::now()));
    }
}

/// Renews a batch's lease every third of its length, for as long as it runs.
async fn heartbeat(services: Services, lease: String) {
    let every = Duration::from_millis((services.delivery.lease_ms / 3).max(200) as u64);
    let mut ticker = tokio::time::interval(every);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let until = services.clock.now_ms() + services.delivery.lease_ms;
        let renewed = async {
            let mut tx = services.db.begin().await?;
            let held = ee_store::message_leases::extend_lease(&mut tx, &lease, until).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(held)
        };
        match renewed.await {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "renewing a delivery lease failed"),
        }
    }
}

/// Waits until `deadline` (forever without one: the branch is disabled then).
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A task stopped when its handle goes out of scope.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
