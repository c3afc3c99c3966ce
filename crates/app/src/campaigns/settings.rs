//! What a campaign keeps beside its content: the throttle, an autoresponder's steps and
//! goal (the `settings` column), and how the steps a client writes are checked.

use ee_core::ValidationErrors;
use ee_core::campaign::Throttle;
use ee_core::zone::SendWindow;
use ee_store::{AnyConnection, Scope, StoreError};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::AppError;

/// The longest delay between two steps: a year.
const MAX_DELAY_HOURS: u32 = 24 * 366;

/// Who a campaign is sent to. Contacts that are not active (unsubscribed, bounced,
/// complained), suppressed or erased are never in it, and each contact is in it once.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Audience {
    /// Saved segments (ids): a contact in any of them is in the audience.
    pub segments: Vec<String>,
    /// Tags (a contact with any of them, or a descendant, is in the audience).
    pub tags: Vec<String>,
    /// Every active contact of the tenant.
    pub all: bool,
}

/// How a campaign sends, beyond its template.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CampaignSettings {
    pub throttle: Option<Throttle>,
    /// Daily hours in which its messages are handed to a transport.
    pub window: Option<SendWindow>,
    /// An autoresponder's sequence.
    pub steps: Vec<Step>,
    /// The custom event on which a contact leaves the sequence.
    pub goal: Option<String>,
    /// An A/B test's variants and rules.
    pub ab: Option<AbTest>,
    /// An RSS campaign's feed.
    pub rss: Option<RssFeed>,
}

impl CampaignSettings {
    /// The settings a stored campaign keeps, read in this one place. They were written by
    /// this type, so a row that does not read back is a fault, logged, and read as the
    /// defaults (no throttle, no window, no A/B test, no steps) rather than failing every
    /// page and job that looks at the campaign.
    pub fn of(campaign: &ee_store::campaigns::Campaign) -> Self {
        serde_json::from_str(&campaign.settings).unwrap_or_else(|e| {
            tracing::error!(campaign = %campaign.id, error = %e, "unreadable campaign settings");
            Self::default()
        })
    }
}

/// The feed a campaign keeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RssFeed {
    /// The feed's http(s) address (RSS 0.9x, 1.0, 2.0 or Atom).
    pub url: String,
    /// Minutes between two checks: 15 to 10080 (7 days).
    pub interval_minutes: u32,
}

/// A text, or a number taken as its text (seed 004 writes `"template_id": 1`).
pub fn text_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => {
            return Err(serde::de::Error::custom(
                "template_id must be a template's id",
            ));
        }
    })
}

/// One step of a sequence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// The template (its category in the contact's language when there is one).
    pub template_id: String,
    /// Hours after the previous step (after enrolling, for the first).
    pub delay_hours: u32,
    /// Daily hours in which the step goes: a step due outside them waits for them to open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<SendWindow>,
}

/// A step as a client writes it; each field is checked and named when missing.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepIn {
    #[serde(default, deserialize_with = "text_or_number")]
    #[schema(value_type = String)]
    pub template_id: Option<String>,
    /// Hours after the previous step (after enrolling, for the first); 0 for at once.
    pub delay_hours: Option<u32>,
    /// Daily hours in which the step goes (`{"from": "09:00", "to": "12:00"}`), in the
    /// tenant's zone or the recipient's.
    pub window: Option<SendWindow>,
}

/// Checks the steps against the tenant's templates; returns them complete.
pub async fn checked_steps(
    conn: &mut AnyConnection,
    tenant_id: &str,
    steps: Vec<StepIn>,
    errors: &mut ValidationErrors,
) -> Result<Vec<Step>, AppError> {
    if steps.is_empty() || steps.len() > 50 {
        errors.add("steps", "give 1 to 50 steps");
    }
    let mut out = Vec::new();
    for (i, step) in steps.into_iter().enumerate() {
        let template = match step.template_id {
            Some(id) => {
                match ee_store::templates::get(conn, &id, Scope::Tenant(tenant_id)).await {
                    Ok(_) => {}
                    Err(StoreError::NotFound) => errors.add(
                        &format!("steps[{i}].template_id"),
                        format!("`{id}` is not a template of the tenant"),
                    ),
                    Err(e) => return Err(e.into()),
                }
                id
            }
            None => {
                errors.add(&format!("steps[{i}].template_id"), "is required");
                String::new()
            }
        };
        let delay = match step.delay_hours {
            Some(d) if d <= MAX_DELAY_HOURS => d,
            Some(_) => {
                errors.add(
                    &format!("steps[{i}].delay_hours"),
                    "is at most 8784 (a year)",
                );
                0
            }
            None => {
                errors.add(
                    &format!("steps[{i}].delay_hours"),
                    "is required (0 for at once)",
                );
                0
            }
        };
        if let Some(Err((field, message))) = step.window.as_ref().map(SendWindow::check) {
            errors.add(&format!("steps[{i}].window.{field}"), message);
        }
        out.push(Step {
            template_id: template,
            delay_hours: delay,
            window: step.window,
        });
    }
    Ok(out)
}

/// One version of an A/B test: what it changes from the campaign's template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// Its name (`A`, `B`, `short subject`…), unique in the test.
    pub name: String,
    /// A subject instead of the template's (its variables work the same).
    pub subject: Option<String>,
    /// A sender name instead of the template's.
    pub from_name: Option<String>,
    /// Another template instead of the campaign's.
    pub template_id: Option<String>,
}

/// What decides an A/B test's winner.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WinnerBy {
    /// Unique opens.
    #[default]
    Opens,
    /// Unique clicks.
    Clicks,
}

/// An A/B test: its variants are sent to a share of the audience (split evenly); after
/// the wait, the variant with the most unique opens (or clicks) goes to the rest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AbTest {
    /// 2 to 5.
    pub variants: Vec<Variant>,
    /// The share of the audience that tests the variants (0.2 = 20 %).
    #[serde(default = "default_share")]
    pub test_share: f64,
    #[serde(default)]
    pub winner_by: WinnerBy,
    /// Hours between the last test message handed over and the choice of the winner.
    #[serde(default = "default_wait")]
    pub wait_hours: u32,
    /// The winner: chosen after the wait, or named by `POST /{id}/winner`.
    #[serde(default)]
    pub winner: Option<String>,
}

fn default_share() -> f64 {
    0.2
}

fn default_wait() -> u32 {
    4
}

/// Checks an A/B test as a client wrote it (no winner yet).
pub async fn check_ab(
    conn: &mut AnyConnection,
    tenant_id: &str,
    ab: &AbTest,
    errors: &mut ValidationErrors,
) -> Result<(), AppError> {
    if !(2..=5).contains(&ab.variants.len()) {
        errors.add("ab.variants", "give 2 to 5 variants");
    }
    let mut names = std::collections::BTreeSet::new();
    for (i, v) in ab.variants.iter().enumerate() {
        if v.name.trim().is_empty() || !names.insert(v.name.trim()) {
            errors.add(&format!("ab.variants[{i}].name"), "is required and unique");
        }
        if let Some(id) = &v.template_id {
            match ee_store::templates::get(conn, id, Scope::Tenant(tenant_id)).await {
                Ok(_) => {}
                Err(StoreError::NotFound) => errors.add(
                    &format!("ab.variants[{i}].template_id"),
                    format!("`{id}` is not a template of the tenant"),
                ),
                Err(e) => return Err(e.into()),
            }
        }
    }
    if !(ab.test_share > 0.0 && ab.test_share <= 1.0) {
        errors.add(
            "ab.test_share",
            "is a fraction above 0 and at most 1 (0.2 = 20 %)",
        );
    }
    if ab.wait_hours > 720 {
        errors.add("ab.wait_hours", "is at most 720 (30 days)");
    }
    if ab.winner.is_some() {
        errors.add(
            "ab.winner",
            "is chosen after the test, or named by POST /{id}/winner",
        );
    }
    Ok(())
}
