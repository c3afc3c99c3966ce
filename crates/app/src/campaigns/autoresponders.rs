//! Autoresponders: a sequence of steps (a template, a delay after the previous step) that
//! each contact runs through once a trigger enrolls it: `subscription` (a contact created
//! since the sequence started, by ingestion, import or the API), `tag:<tag>` (the tag
//! given since), `segment:<id>` (entering the segment: its members at the start are
//! excluded) or `event:<name>` (a custom event posted to `/api/v2/events`). A contact
//! leaves when it may no longer be mailed (unsubscribed, bounced, complained, suppressed,
//! erased) or on the goal event. Steps are read at each send, so a step added, or a pause,
//! applies to the contacts already in the sequence. A contact never runs a sequence twice
//! at once; one who completed it runs it again when its tag is given anew or its event
//! posted again.

use ee_core::delivery::MessageState;
use ee_store::campaigns::{self as store, Campaign};
pub use ee_store::enrollments::Enrollment;
use ee_store::enrollments::{self, Advance, Enroll, FIRST_PARAM};
use ee_store::segments::{Param, compile};
use ee_store::{AnyConnection, Scope, segments};
use serde::Serialize;
use utoipa::ToSchema;

use crate::campaigns::settings::CampaignSettings;
pub use crate::campaigns::settings::{Step, StepIn};
use crate::queue::messages::SendRequest;
use crate::{AppError, Services};
use ee_core::campaign::counter::{LANGUAGE, STEP};
pub use ee_core::campaign::{event_type, valid_event_name};

const HOUR_MS: i64 = 3_600_000;

fn settings_of(campaign: &Campaign) -> CampaignSettings {
    CampaignSettings::of(campaign)
}

/// Since when a trigger counts: an instant (the sequence's start), or, for a contact who
/// completed the sequence, the end of its last run.
#[derive(Clone, Copy)]
enum Since {
    At(i64),
    RunEnded,
}

/// The enrollment condition of the campaign's trigger (SQL over `contacts c`), and its
/// values; a segment trigger's is the segment itself. `None` for a run again: only a tag
/// given anew or an event posted again starts one (a contact is created once, and a
/// segment's member who completed would start again at once).
async fn trigger_condition(
    conn: &mut AnyConnection,
    campaign: &Campaign,
    since: Since,
    now: i64,
) -> Result<Option<(String, Vec<Param>)>, AppError> {
    let trigger = campaign.trigger_event.as_deref().unwrap_or("subscription");
    let first = FIRST_PARAM;
    // The comparison with the start, whose value follows the trigger's own ones.
    let after = |own: usize| match since {
        Since::At(_) => format!(">= ${}", first + own),
        Since::RunEnded => enrollments::RUN_ENDED.to_owned(),
    };
    let with_start = |mut params: Vec<Param>| {
        if let Since::At(at) = since {
            params.push(Param::Int(at));
        }
        params
    };
    if let Some(tag) = trigger.strip_prefix("tag:") {
        let slug = ee_core::tags::parse(tag)
            .map_err(|e| crate::input::invalid("trigger", e.to_string()))?
            .slug();
        return Ok(Some((
            enrollments::tagged_since(first, &after(2)),
            with_start(vec![
                Param::Text(slug.clone()),
                Param::Text(format!("{slug}/")),
            ]),
        )));
    }
    if let Some(name) = trigger.strip_prefix("event:") {
        return Ok(Some((
            enrollments::event_since(first, &after(1)),
            with_start(vec![Param::Text(event_type(name))]),
        )));
    }
    let Since::At(at) = since else {
        return Ok(None);
    };
    if let Some(id) = trigger.strip_prefix("segment:") {
        let segment = segments::get(conn, id, Scope::Tenant(&campaign.tenant_id))
            .await
            .map_err(|_| {
                crate::input::invalid("trigger", format!("segment `{id}` no longer exists"))
            })?;
        let value = serde_json::from_str(&segment.expression).unwrap_or_default();
        let expr = crate::campaigns::segments::parse_expr(&value, now)?;
        let compiled = compile(&expr, first, now, ee_store::Backend::of(conn))
            .map_err(|e| crate::input::invalid("trigger", e))?;
        return Ok(Some((compiled.sql, compiled.params)));
    }
    Ok(Some((
        enrollments::created_since(first),
        vec![Param::Int(at)],
    )))
}

/// At the start of a sequence triggered by a segment, its members are excluded: only
/// contacts entering it later run the sequence.
pub async fn exclude_present_members(
    conn: &mut AnyConnection,
    campaign: &Campaign,
    now: i64,
) -> Result<u64, AppError> {
    if !campaign
        .trigger_event
        .as_deref()
        .is_some_and(|t| t.starts_with("segment:"))
    {
        return Ok(0);
    }
    let Some((condition, params)) = trigger_condition(conn, campaign, Since::At(now), now).await?
    else {
        return Ok(0);
    };
    let enroll = Enroll {
        campaign_id: &campaign.id,
        tenant_id: &campaign.tenant_id,
        state: ee_core::campaign::EnrollmentState::Excluded,
        due: now,
        condition,
        params,
    };
    Ok(enrollments::enroll(conn, &enroll, now).await?)
}

/// Checks what a sequence needs before it starts: steps and a known trigger.
pub async fn check_startable(
    conn: &mut AnyConnection,
    campaign: &Campaign,
    now: i64,
) -> Result<(), AppError> {
    if settings_of(campaign).steps.is_empty() {
        return Err(crate::input::invalid(
            "steps",
            "an autoresponder needs at least one step",
        ));
    }
    trigger_condition(conn, campaign, Since::At(now), now).await?;
    Ok(())
}

/// New contacts enrolled (their first step due after its delay), and those under way
/// (also those MailWizz runs) who may no longer be mailed or reached the goal leave: the
/// contacts who left.
pub async fn enroll_and_leave(
    conn: &mut AnyConnection,
    campaign: &Campaign,
    settings: &CampaignSettings,
    now: i64,
) -> Result<Vec<String>, AppError> {
    let first_delay = settings.steps.first().map_or(0, |s| s.delay_hours);
    let due = now + i64::from(first_delay) * HOUR_MS;
    let since = Since::At(campaign.started_at.unwrap_or(now));
    let mut enrolled = 0;
    for (since, again) in [(since, false), (Since::RunEnded, true)] {
        let Some((condition, params)) = trigger_condition(conn, campaign, since, now).await? else {
            continue;
        };
        let enroll = Enroll {
            campaign_id: &campaign.id,
            tenant_id: &campaign.tenant_id,
            state: ee_core::campaign::EnrollmentState::Active,
            due,
            condition,
            params,
        };
        enrolled += if again {
            enrollments::rerun(conn, &enroll, now).await?
        } else {
            enrollments::enroll(conn, &enroll, now).await?
        };
    }
    store::count(conn, &campaign.id, "enrolled", enrolled as i64, now).await?;
    let mut left = enrollments::leave_unreachable(conn, &campaign.id, now).await?;
    if let Some(goal) = &settings.goal {
        let reached =
            enrollments::leave_on_goal(conn, &campaign.id, &event_type(goal), now).await?;
        store::count(
            conn,
            &campaign.id,
            "goal_reached",
            reached.len() as i64,
            now,
        )
        .await?;
        left.extend(reached);
    }
    Ok(left)
}

/// One pass over a sending sequence: new contacts enrolled, those who may no longer be
/// mailed or reached the goal leave, and the due steps are handed over within `limit`.
/// Returns how many messages were queued.
pub async fn serve(
    services: &Services,
    campaign: &Campaign,
    limit: i64,
) -> Result<usize, AppError> {
    let now = services.clock.now_ms();
    let settings = settings_of(campaign);
    let mut conn = services.db.pool().acquire().await?;
    enroll_and_leave(&mut conn, campaign, &settings, now).await?;
    if limit == 0 {
        return Ok(0);
    }
    let due = enrollments::due(&mut conn, &campaign.id, now, limit).await?;
    let windows = StepWindows::load(&mut conn, campaign, &settings, &due).await?;
    drop(conn);
    let mut queued = 0;
    for enrollment in due {
        let index = usize::try_from(enrollment.step).unwrap_or(usize::MAX);
        let next = next_step(&settings, index, now);
        if let Some(opens) = windows.next_opening(&settings, index, &enrollment.contact_id, now) {
            // Due outside its step's hours: the step waits for them.
            let mut conn = services.db.pool().acquire().await?;
            let wait = Advance {
                step: enrollment.step,
                state: ee_core::campaign::EnrollmentState::Active,
                next_at: Some(opens),
                detail: None,
            };
            enrollments::advance(
                &mut conn,
                &campaign.id,
                &enrollment.contact_id,
                enrollment.step,
                &wait,
                now,
            )
            .await?;
            continue;
        }
        let Some(step) = settings.steps.get(index) else {
            // Steps were removed past this one: the sequence is over for it.
            let mut conn = services.db.pool().acquire().await?;
            let done = Advance {
                step: enrollment.step,
                state: ee_core::campaign::EnrollmentState::Completed,
                next_at: None,
                detail: None,
            };
            enrollments::advance(
                &mut conn,
                &campaign.id,
                &enrollment.contact_id,
                enrollment.step,
                &done,
                now,
            )
            .await?;
            continue;
        };
        let (template, category) =
            crate::campaigns::messages::template_choice(services, campaign, &step.template_id)
                .await?;
        let request = SendRequest {
            tenant_id: campaign.tenant_id.clone(),
            kind: ee_core::delivery::MessageKind::Campaign,
            campaign_id: Some(campaign.id.clone()),
            to_email: enrollment.email.clone(),
            template,
            category,
            idempotency_key: Some(step_key(&campaign.id, &enrollment)),
            ..Default::default()
        };
        let outcome = crate::campaigns::messages::queue_with_fallback(
            services,
            request,
            Some(&step.template_id),
        )
        .await;
        let mut conn = services.db.pool().acquire().await?;
        let now = services.clock.now_ms();
        let to = match &outcome {
            Ok((message, _)) if message.state != MessageState::Suppressed => {
                queued += 1;
                let step_counter = format!("{STEP}{index}");
                store::count(&mut conn, &campaign.id, &step_counter, 1, now).await?;
                if let Some(language) = &message.language {
                    let language_counter = format!("{LANGUAGE}{language}");
                    store::count(&mut conn, &campaign.id, &language_counter, 1, now).await?;
                }
                next
            }
            Ok((message, _)) => Advance {
                step: enrollment.step,
                state: ee_core::campaign::EnrollmentState::Left,
                next_at: None,
                detail: message.state_reason.as_deref(),
            },
            Err(_) => next,
        };
        let failure = outcome.as_ref().err().map(ToString::to_string);
        let to = match &failure {
            Some(reason) => Advance {
                detail: Some(reason),
                ..to
            },
            None => to,
        };
        enrollments::advance(
            &mut conn,
            &campaign.id,
            &enrollment.contact_id,
            enrollment.step,
            &to,
            now,
        )
        .await?;
        if failure.is_some() {
            store::count(&mut conn, &campaign.id, "failed", 1, now).await?;
        }
    }
    let mut conn = services.db.pool().acquire().await?;
    store::count(&mut conn, &campaign.id, "queued", queued as i64, now).await?;
    Ok(queued)
}

/// What the steps' windows are read against: the tenant's zone and, for windows in the
/// recipient's zone, the due contacts' own zones.
struct StepWindows {
    zone: ee_core::zone::TimeZone,
    zones: std::collections::HashMap<String, ee_core::zone::TimeZone>,
}

impl StepWindows {
    async fn load(
        conn: &mut ee_store::AnyConnection,
        campaign: &Campaign,
        settings: &CampaignSettings,
        due: &[enrollments::Due],
    ) -> Result<Self, AppError> {
        let zone = crate::delivery::tenant_zone(conn, &campaign.tenant_id).await?;
        let per_recipient = settings.steps.iter().any(|s| {
            s.window
                .as_ref()
                .is_some_and(|w| w.zone == ee_core::zone::WindowZone::Recipient)
        });
        let zones = if per_recipient {
            let ids: Vec<String> = due.iter().map(|d| d.contact_id.clone()).collect();
            crate::delivery::recipient_zones(conn, &ids).await?
        } else {
            Default::default()
        };
        Ok(Self { zone, zones })
    }

    /// When step `index` may go for the contact, if not now.
    fn next_opening(
        &self,
        settings: &CampaignSettings,
        index: usize,
        contact_id: &str,
        now: i64,
    ) -> Option<i64> {
        let window = settings.steps.get(index)?.window.as_ref()?;
        window.next_opening(
            now,
            &window.zone_for(&self.zone, self.zones.get(contact_id)),
        )
    }
}

/// A step message's key: one message per contact, step and run of the sequence (the first
/// run's keys are those of before runs were counted).
fn step_key(campaign_id: &str, enrollment: &enrollments::Due) -> String {
    let key = format!(
        "campaign:{campaign_id}:{}:step{}",
        enrollment.contact_id, enrollment.step
    );
    match enrollment.run {
        0 => key,
        run => format!("{key}:run{run}"),
    }
}

/// Where an enrollment goes after sending step `index`: the next step after its delay,
/// or completed.
fn next_step(settings: &CampaignSettings, index: usize, now: i64) -> Advance<'static> {
    match settings.steps.get(index + 1) {
        Some(next) => Advance {
            step: (index + 1) as i64,
            state: ee_core::campaign::EnrollmentState::Active,
            next_at: Some(now + i64::from(next.delay_hours) * HOUR_MS),
            detail: None,
        },
        None => Advance {
            step: (index + 1) as i64,
            state: ee_core::campaign::EnrollmentState::Completed,
            next_at: None,
            detail: None,
        },
    }
}

/// An enrollment as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnrollmentOut {
    pub contact_id: String,
    pub email: Option<String>,
    /// The next step's index (the number of steps sent).
    pub step: i64,
    /// How many runs of the sequence the contact completed before this one (it runs it
    /// again when its tag is given anew or its event posted again after completing).
    pub run: i64,
    pub state: ee_core::campaign::EnrollmentState,
    /// Why it left.
    pub detail: Option<String>,
    pub next_at: Option<String>,
    pub enrolled_at: String,
}

impl From<enrollments::Enrollment> for EnrollmentOut {
    fn from(e: enrollments::Enrollment) -> Self {
        use ee_core::timefmt::to_rfc3339;
        Self {
            contact_id: e.contact_id,
            email: e.email,
            step: e.step,
            run: e.run,
            state: e.state,
            detail: e.detail,
            next_at: e.next_at.map(to_rfc3339),
            enrolled_at: to_rfc3339(e.enrolled_at),
        }
    }
}

/// The states an enrollment may be in.
pub const ENROLLMENT_STATES: &[&str] = ee_core::campaign::EnrollmentState::NAMES;

/// An autoresponder's enrollments (of a state), a page of `limit` after the cursor (a
/// contact id).
pub async fn enrollments(
    read: &mut crate::read::Read,
    campaign: &Campaign,
    state: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Enrollment>, AppError> {
    Ok(enrollments::list(read.conn(), &campaign.id, state, after, limit).await?)
}
