//! What a campaign keeps beside its content: the throttle, an autoresponder's steps and
//! goal (the `settings` column), and how the steps a client writes are checked.

use ee_core::ValidationErrors;
use ee_core::campaign::Throttle;
use ee_store::{AnyConnection, Scope, StoreError};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::AppError;

/// The longest delay between two steps: a year.
const MAX_DELAY_HOURS: u32 = 24 * 366;

/// How a campaign sends, beyond its template.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CampaignSettings {
    pub throttle: Option<Throttle>,
    /// An autoresponder's sequence.
    pub steps: Vec<Step>,
    /// The custom event on which a contact leaves the sequence.
    pub goal: Option<String>,
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
        out.push(Step {
            template_id: template,
            delay_hours: delay,
        });
    }
    Ok(out)
}
