//! Campaigns: created (seed 004's body as written), changed and deleted while draft, and
//! moved through their life (schedule, start, pause, resume, cancel), each change audited
//! in its transaction. Starting fixes the audience: the ledger gets one row per recipient.
//! `campaign_dispatch` hands the recipients over.
pub mod ab_tests;
pub mod autoresponders;
pub mod dispatch;
pub mod mailwizz;
pub mod messages;
pub mod pace;
pub mod queue;
pub mod rendering;
pub mod rss;
pub mod rss_runs;
pub mod segments;
pub mod sequence_mailwizz;
pub mod settings;
pub mod stats;
pub mod templates;
pub mod test_send;
pub mod view;

use ee_core::ValidationErrors;
use ee_core::campaign::{CampaignAction, CampaignKind, CampaignStatus, Throttle};
use ee_core::segment::Expr;
use ee_core::zone::SendWindow;
pub use ee_store::campaigns::Campaign;
use ee_store::campaigns::{self as store, NewCampaign};
use ee_store::{
    AnyConnection, Scope, StoreError, segments as segment_rows, templates as template_rows,
};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::AppError;
pub use crate::campaigns::settings::CampaignSettings;
use crate::campaigns::settings::{AbTest, Step, StepIn, check_ab, checked_steps, text_or_number};
use crate::input::invalid;
use crate::write::{Deletable, Write};
use ee_core::campaign::valid_event_name;

pub use crate::campaigns::settings::Audience;
pub use crate::campaigns::view::CampaignOut;

impl Deletable for Campaign {
    const DELETED: &'static str = "campaign.delete";
    type Out = CampaignOut;

    async fn delete(conn: &mut AnyConnection, id: &str) -> Result<(), StoreError> {
        store::delete(conn, id).await
    }
}

/// A campaign as a client writes it. Every field may be left out of an update.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignIn {
    pub name: Option<String>,
    /// One of the tenant's templates (its id). Each recipient gets the template of the same
    /// category in their language when there is one (the fallback chain), else this one.
    #[serde(default, deserialize_with = "text_or_number")]
    #[schema(value_type = Option<String>)]
    pub template_id: Option<String>,
    /// regular (default), autoresponder, ab_test or rss.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// What starts an autoresponder: `subscription`, `tag:<tag>`, `segment:<id>` or
    /// `event:<name>`.
    pub trigger: Option<String>,
    /// The tenant (id or slug); a tenant's own key may leave it out.
    #[serde(alias = "tenant")]
    pub tenant_id: Option<String>,
    pub audience: Option<Audience>,
    /// At most this many messages handed to a transport in any hour.
    pub throttle: Option<Throttle>,
    /// Daily hours in which messages are handed to a transport (the tenant's zone, or
    /// each recipient's).
    pub window: Option<SendWindow>,
    /// When to start: RFC 3339 with an offset, or a local date-time in the tenant's time
    /// zone (`2026-12-31T08:00`); `POST /schedule` without a body uses it.
    pub send_at: Option<String>,
    /// An autoresponder's steps; without them, one step: `template_id` at once.
    pub steps: Option<Vec<StepIn>>,
    /// A custom event name: a contact who posts it leaves the sequence.
    pub goal: Option<String>,
    /// An A/B test's variants and rules (`type: ab_test`).
    pub ab: Option<AbTest>,
    /// An RSS campaign's feed (`type: rss`): its URL and how often it is checked.
    pub rss: Option<crate::campaigns::rss::RssIn>,
}

const TRIGGER_PREFIXES: [&str; 3] = ["tag:", "segment:", "event:"];

fn check_trigger(trigger: &str, errors: &mut ValidationErrors) {
    if let Some(name) = trigger.strip_prefix("event:")
        && !valid_event_name(name)
    {
        errors.add(
            "trigger",
            "an event name is 1 to 64 letters, digits, _, - or .",
        );
        return;
    }
    let known = trigger == "subscription"
        || TRIGGER_PREFIXES.iter().any(|p| {
            trigger
                .strip_prefix(p)
                .is_some_and(|rest| !rest.trim().is_empty())
        });
    if !known {
        errors.add(
            "trigger",
            "must be subscription, tag:<tag>, segment:<segment id> or event:<name>",
        );
    }
}

/// Checks the audience against the tenant: its segments must be the tenant's, its tags
/// valid. Returns it with the tags in their canonical form.
async fn checked_audience(
    conn: &mut AnyConnection,
    tenant_id: &str,
    audience: Audience,
    errors: &mut ValidationErrors,
) -> Result<Audience, AppError> {
    let mut tags = Vec::new();
    for tag in &audience.tags {
        match ee_core::tags::parse(tag) {
            Ok(t) => tags.push(t.slug()),
            Err(e) => errors.add("audience.tags", e.to_string()),
        }
    }
    for id in &audience.segments {
        match segment_rows::get(conn, id, Scope::Tenant(tenant_id)).await {
            Ok(_) => {}
            Err(StoreError::NotFound) => errors.add(
                "audience.segments",
                format!("`{id}` is not a segment of the tenant"),
            ),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Audience {
        segments: audience.segments,
        tags,
        all: audience.all,
    })
}

async fn check_template(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
    errors: &mut ValidationErrors,
) -> Result<(), AppError> {
    match template_rows::get(conn, id, Scope::Tenant(tenant_id)).await {
        Ok(_) => Ok(()),
        Err(StoreError::NotFound) => {
            errors.add(
                "template_id",
                format!("`{id}` is not a template of the tenant"),
            );
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

fn check_goal(goal: Option<&str>, errors: &mut ValidationErrors) {
    if goal.is_some_and(|g| !valid_event_name(g)) {
        errors.add(
            "goal",
            "is an event name: 1 to 64 letters, digits, _, - or .",
        );
    }
}

fn check_throttle(throttle: Option<Throttle>, errors: &mut ValidationErrors) {
    if throttle.is_some_and(|t| t.per_hour == 0) {
        errors.add("throttle.per_hour", "must be at least 1");
    }
}

fn check_window(window: Option<&SendWindow>, errors: &mut ValidationErrors) {
    if let Some(Err((field, message))) = window.map(SendWindow::check) {
        errors.add(&format!("window.{field}"), message);
    }
}

/// When to start: an instant (RFC 3339 with its offset), or a local date-time read in the
/// tenant's time zone.
async fn parse_send_at(
    conn: &mut AnyConnection,
    tenant_id: &str,
    text: Option<&str>,
    now: i64,
) -> Result<Option<i64>, AppError> {
    let Some(text) = text else { return Ok(None) };
    let zone = crate::delivery::tenant_zone(conn, tenant_id).await?;
    let at = ee_core::zone::parse_datetime(text, &zone).ok_or_else(|| {
        invalid(
            "send_at",
            "must be a date-time: RFC 3339 (2026-12-31T08:00:00+01:00), or local to the tenant's time zone (2026-12-31T08:00)",
        )
    })?;
    if at <= now {
        return Err(invalid("send_at", "is in the past"));
    }
    Ok(Some(at))
}

/// Creates a draft campaign for `tenant_id`.
pub async fn create(
    w: &mut Write,
    tenant_id: &str,
    input: CampaignIn,
) -> Result<CampaignOut, AppError> {
    let mut errors = ValidationErrors::new();
    let name = input.name.as_deref().map(str::trim).unwrap_or_default();
    if name.is_empty() {
        errors.add("name", "is required");
    }
    let kind = match input.kind.as_deref() {
        None => CampaignKind::Regular,
        Some(k) => CampaignKind::parse(k).unwrap_or_else(|| {
            errors.add("type", format!("must be one of {}", CampaignKind::names()));
            CampaignKind::Regular
        }),
    };
    if let Some(trigger) = &input.trigger {
        check_trigger(trigger, &mut errors);
    } else if kind == CampaignKind::Autoresponder {
        errors.add("trigger", "is required for an autoresponder");
    }
    match &input.template_id {
        Some(id) => check_template(&mut w.tx, tenant_id, id, &mut errors).await?,
        None if kind == CampaignKind::Autoresponder && input.steps.is_some() => {}
        None => errors.add("template_id", "is required"),
    }
    let steps = match input.steps {
        Some(steps) if kind == CampaignKind::Autoresponder => {
            checked_steps(&mut w.tx, tenant_id, steps, &mut errors).await?
        }
        Some(_) => {
            errors.add("steps", "only an autoresponder has steps");
            Vec::new()
        }
        // Seed 004's autoresponder names one template: a sequence of one step.
        None if kind == CampaignKind::Autoresponder => input
            .template_id
            .iter()
            .map(|t| Step {
                template_id: t.clone(),
                delay_hours: 0,
                window: None,
            })
            .collect(),
        None => Vec::new(),
    };
    check_goal(input.goal.as_deref(), &mut errors);
    match &input.ab {
        Some(ab) if kind == CampaignKind::AbTest => {
            check_ab(&mut w.tx, tenant_id, ab, &mut errors).await?
        }
        Some(_) => errors.add("ab", "only an ab_test campaign has variants"),
        None if kind == CampaignKind::AbTest => errors.add("ab", "is required for an ab_test"),
        None => {}
    }
    let rss = crate::campaigns::rss::checked(kind, input.rss, &mut errors);
    let audience = checked_audience(
        &mut w.tx,
        tenant_id,
        input.audience.unwrap_or_default(),
        &mut errors,
    )
    .await?;
    check_throttle(input.throttle, &mut errors);
    check_window(input.window.as_ref(), &mut errors);
    let send_at = match parse_send_at(&mut w.tx, tenant_id, input.send_at.as_deref(), w.now).await {
        Ok(at) => at,
        Err(AppError::Invalid(e)) => {
            errors.0.extend(e.0);
            None
        }
        Err(e) => return Err(e),
    };
    errors.into_result()?;
    let settings = CampaignSettings {
        throttle: input.throttle,
        window: input.window,
        steps,
        goal: input.goal,
        ab: input.ab,
        rss,
    };
    let audience = serde_json::to_string(&audience).unwrap_or_else(|_| "{}".into());
    let settings = serde_json::to_string(&settings).unwrap_or_else(|_| "{}".into());
    let mut campaign = store::insert(
        &mut w.tx,
        NewCampaign {
            tenant_id,
            name,
            kind,
            template_id: input.template_id.as_deref(),
            trigger_event: input.trigger.as_deref(),
            audience: &audience,
            settings: &settings,
        },
        w.now,
    )
    .await
    .map_err(conflict)?;
    if send_at.is_some() {
        store::set_schedule(&mut w.tx, &campaign.id, send_at, w.now).await?;
        campaign.scheduled_at = send_at;
    }
    let out = CampaignOut::from(campaign);
    w.created("campaign.create", &out).await?;
    Ok(out)
}

fn conflict(e: StoreError) -> AppError {
    match e {
        StoreError::Conflict(m) => AppError::Conflict(m),
        other => other.into(),
    }
}

/// Changes a draft campaign; a campaign that left the draft state is refused (409).
pub async fn update(w: &mut Write, id: &str, input: CampaignIn) -> Result<CampaignOut, AppError> {
    let mut campaign: Campaign = w.find(id).await?;
    // A running sequence may take new steps, a goal, a name or a throttle: they apply to
    // the contacts already in it.
    let live_sequence = campaign.kind == CampaignKind::Autoresponder && !campaign.status.is_final();
    let changes_only_the_sequence = input.template_id.is_none()
        && input.trigger.is_none()
        && input.audience.is_none()
        && input.send_at.is_none()
        && input.ab.is_none()
        && input.rss.is_none();
    // Its pace (throttle, window) is read where messages meet a transport: it may change
    // until the campaign is over, and applies to the messages not yet handed over.
    let changes_only_the_pace =
        changes_only_the_sequence && input.steps.is_none() && input.goal.is_none();
    let may_change = campaign.status.editable()
        || (!campaign.status.is_final() && changes_only_the_pace)
        || (live_sequence && changes_only_the_sequence);
    if !may_change {
        return Err(AppError::Conflict(format!(
            "a {} campaign cannot be changed but for its name, throttle and window (a running autoresponder: also its steps and goal); a draft can",
            campaign.status.as_str()
        )));
    }
    if input.tenant_id.is_some() {
        return Err(invalid(
            "tenant_id",
            "a campaign cannot move to another tenant",
        ));
    }
    if input
        .kind
        .as_deref()
        .is_some_and(|k| k != campaign.kind.as_str())
    {
        return Err(invalid(
            "type",
            "cannot be changed; create another campaign",
        ));
    }
    let before = CampaignOut::from(campaign.clone());
    let mut errors = ValidationErrors::new();
    let tenant_id = campaign.tenant_id.clone();
    if let Some(name) = &input.name {
        if name.trim().is_empty() {
            errors.add("name", "must not be blank");
        }
        campaign.name = name.trim().to_owned();
    }
    if let Some(template) = &input.template_id {
        check_template(&mut w.tx, &tenant_id, template, &mut errors).await?;
        campaign.template_id = Some(template.clone());
    }
    if let Some(trigger) = &input.trigger {
        check_trigger(trigger, &mut errors);
        campaign.trigger_event = Some(trigger.clone());
    }
    if let Some(audience) = input.audience {
        let audience = checked_audience(&mut w.tx, &tenant_id, audience, &mut errors).await?;
        campaign.audience = serde_json::to_string(&audience).unwrap_or_else(|_| "{}".into());
    }
    let mut settings = CampaignSettings::of(&campaign);
    if input.throttle.is_some() {
        check_throttle(input.throttle, &mut errors);
        settings.throttle = input.throttle;
    }
    if input.window.is_some() {
        check_window(input.window.as_ref(), &mut errors);
        settings.window = input.window;
    }
    if let Some(steps) = input.steps {
        if campaign.kind == CampaignKind::Autoresponder {
            settings.steps = checked_steps(&mut w.tx, &tenant_id, steps, &mut errors).await?;
        } else {
            errors.add("steps", "only an autoresponder has steps");
        }
    }
    if input.goal.is_some() {
        check_goal(input.goal.as_deref(), &mut errors);
        settings.goal = input.goal;
    }
    if let Some(ab) = input.ab {
        if campaign.kind == CampaignKind::AbTest {
            check_ab(&mut w.tx, &tenant_id, &ab, &mut errors).await?;
            settings.ab = Some(ab);
        } else {
            errors.add("ab", "only an ab_test campaign has variants");
        }
    }
    if input.rss.is_some() {
        if campaign.kind == CampaignKind::Rss {
            settings.rss = crate::campaigns::rss::checked(campaign.kind, input.rss, &mut errors);
        } else {
            errors.add("rss", "only an rss campaign has a feed");
        }
    }
    campaign.settings = serde_json::to_string(&settings).unwrap_or_else(|_| "{}".into());
    if input.send_at.is_some() {
        match parse_send_at(&mut w.tx, &tenant_id, input.send_at.as_deref(), w.now).await {
            Ok(at) => campaign.scheduled_at = at,
            Err(AppError::Invalid(e)) => errors.0.extend(e.0),
            Err(e) => return Err(e),
        }
    }
    errors.into_result()?;
    store::update(&mut w.tx, &campaign, w.now)
        .await
        .map_err(conflict)?;
    let after = CampaignOut::from(w.find::<Campaign>(id).await?);
    w.changed("campaign.update", &before, &after).await?;
    Ok(after)
}

/// Deletes a draft (or cancelled) campaign; one that sent is kept for its statistics.
pub async fn delete(w: &mut Write, id: &str) -> Result<(), AppError> {
    let campaign: Campaign = w.find(id).await?;
    if !matches!(
        campaign.status,
        CampaignStatus::Draft | CampaignStatus::Cancelled
    ) || campaign.started_at.is_some()
    {
        return Err(AppError::Conflict(format!(
            "a {} campaign cannot be deleted; cancel it instead",
            campaign.status.as_str()
        )));
    }
    crate::write::delete::<Campaign>(w, id).await
}

/// The audience as one segment expression (`None`: every active contact).
pub async fn audience_expr(
    conn: &mut AnyConnection,
    tenant_id: &str,
    audience: &Audience,
    now: i64,
) -> Result<Option<Expr>, AppError> {
    if audience.all {
        return Ok(None);
    }
    let mut any = Vec::new();
    for id in &audience.segments {
        let segment = segment_rows::get(conn, id, Scope::Tenant(tenant_id))
            .await
            .map_err(|e| match e {
                StoreError::NotFound => invalid(
                    "audience.segments",
                    format!("segment `{id}` no longer exists"),
                ),
                other => other.into(),
            })?;
        let value: Value = serde_json::from_str(&segment.expression).unwrap_or(json!({}));
        any.push(crate::campaigns::segments::parse_expr(&value, now)?);
    }
    any.extend(audience.tags.iter().map(|t| Expr::Tag { tag: t.clone() }));
    if any.is_empty() {
        return Err(invalid(
            "audience",
            "is empty: name segments, tags, or all contacts (\"all\": true)",
        ));
    }
    Ok(Some(Expr::Or { or: any }))
}

/// How many recipients the campaign's audience holds now (before sending starts), or the
/// snapshot's count (after).
pub async fn audience_count(
    read: &mut crate::read::Read,
    campaign: &Campaign,
    now: i64,
) -> Result<i64, AppError> {
    let conn = read.conn();
    if let Some(count) = campaign.audience_count {
        return Ok(count);
    }
    let audience: Audience = serde_json::from_str(&campaign.audience).unwrap_or_default();
    let expr = audience_expr(conn, &campaign.tenant_id, &audience, now).await?;
    Ok(store::count_audience(conn, &campaign.tenant_id, expr.as_ref(), now).await?)
}

/// Applies an operator's action to a campaign the caller may see. Starting fixes the
/// audience; cancelling cancels the recipients still waiting and the messages not sent.
pub async fn act(
    w: &mut Write,
    id: &str,
    action: CampaignAction,
    send_at: Option<&str>,
) -> Result<CampaignOut, AppError> {
    let campaign: Campaign = w.find(id).await?;
    let before = CampaignOut::from(campaign.clone());
    let next = campaign.status.apply(action).map_err(AppError::Conflict)?;
    match action {
        CampaignAction::Schedule => {
            let at = match parse_send_at(&mut w.tx, &campaign.tenant_id, send_at, w.now).await? {
                Some(at) => Some(at),
                None => campaign.scheduled_at.filter(|at| *at > w.now),
            }
            .ok_or_else(|| invalid("send_at", "is required to schedule a campaign"))?;
            check_sendable(&mut w.tx, &campaign, w.now).await?;
            store::set_schedule(&mut w.tx, id, Some(at), w.now).await?;
        }
        CampaignAction::Start => {
            check_sendable(&mut w.tx, &campaign, w.now).await?;
        }
        _ => {}
    }
    move_to(w, &campaign, next, None).await?;
    if action == CampaignAction::Start {
        match campaign.kind {
            // A sequence enrolls contacts as its trigger finds them; a segment's present
            // members are excluded now.
            CampaignKind::Autoresponder => {
                crate::campaigns::autoresponders::exclude_present_members(
                    &mut w.tx, &campaign, w.now,
                )
                .await?;
            }
            CampaignKind::AbTest => {
                let total = start_sending(w, &campaign).await?;
                crate::campaigns::ab_tests::assign_test_group(&mut w.tx, &campaign, total).await?;
            }
            CampaignKind::Regular => {
                start_sending(w, &campaign).await?;
            }
            // A feed is checked at once, then at its interval, while the campaign sends.
            CampaignKind::Rss => {
                ee_store::campaign_feeds::ensure(&mut w.tx, id, &campaign.tenant_id, w.now).await?;
            }
        }
    }
    if action == CampaignAction::Cancel {
        store::cancel_remaining(&mut w.tx, id, w.now).await?;
    }
    let after = CampaignOut::from(w.find::<Campaign>(id).await?);
    w.changed(&format!("campaign.{}", action.name()), &before, &after)
        .await?;
    Ok(after)
}

/// What must hold before a campaign may send: a kind this version sends, a template still
/// there, a non-empty audience definition.
async fn check_sendable(
    conn: &mut AnyConnection,
    campaign: &Campaign,
    now: i64,
) -> Result<(), AppError> {
    match campaign.kind {
        CampaignKind::Regular | CampaignKind::AbTest => {}
        CampaignKind::Rss => {
            if CampaignSettings::of(campaign).rss.is_none() {
                return Err(invalid("rss", "is required to send an rss campaign"));
            }
        }
        CampaignKind::Autoresponder => {
            return crate::campaigns::autoresponders::check_startable(conn, campaign, now).await;
        }
    }
    let mut errors = ValidationErrors::new();
    match &campaign.template_id {
        Some(t) => check_template(conn, &campaign.tenant_id, t, &mut errors).await?,
        None => errors.add("template_id", "is required to send"),
    }
    errors.into_result()?;
    let audience: Audience = serde_json::from_str(&campaign.audience).unwrap_or_default();
    audience_expr(conn, &campaign.tenant_id, &audience, now).await?;
    Ok(())
}

/// Moves the campaign to `next`; a campaign another node moved first is a conflict.
async fn move_to(
    w: &mut Write,
    campaign: &Campaign,
    next: CampaignStatus,
    reason: Option<&str>,
) -> Result<(), AppError> {
    if !store::set_status(
        &mut w.tx,
        &campaign.id,
        campaign.status,
        next,
        reason,
        w.now,
    )
    .await?
    {
        return Err(AppError::Conflict(
            "the campaign changed meanwhile; read it again".into(),
        ));
    }
    Ok(())
}

/// Fixes the audience of a campaign that starts sending: its ledger, in one statement.
pub async fn start_sending(w: &mut Write, campaign: &Campaign) -> Result<i64, AppError> {
    let audience: Audience = serde_json::from_str(&campaign.audience).unwrap_or_default();
    let expr = audience_expr(&mut w.tx, &campaign.tenant_id, &audience, w.now).await?;
    Ok(store::snapshot_audience(&mut w.tx, campaign, expr.as_ref(), w.now).await?)
}

/// Makes a campaign's failed recipients pending again; how many. A campaign that sent
/// goes back to sending.
pub async fn retry_failed(w: &mut Write, id: &str) -> Result<u64, AppError> {
    let campaign: Campaign = w.find(id).await?;
    if !matches!(
        campaign.status,
        CampaignStatus::Sending | CampaignStatus::Sent | CampaignStatus::Paused
    ) {
        return Err(AppError::Conflict(format!(
            "a {} campaign has no recipients to retry",
            campaign.status.as_str()
        )));
    }
    let retried = store::retry_failed(&mut w.tx, id, w.now).await?;
    if retried > 0 && campaign.status == CampaignStatus::Sent {
        store::set_status(
            &mut w.tx,
            id,
            CampaignStatus::Sent,
            CampaignStatus::Sending,
            None,
            w.now,
        )
        .await?;
    }
    w.record(crate::audit::Change {
        action: "campaign.retry_failed",
        resource_type: "campaign",
        resource_id: Some(id),
        tenant_id: Some(&campaign.tenant_id),
        before: None,
        after: Some(json!({"retried": retried})),
    })
    .await?;
    Ok(retried)
}
