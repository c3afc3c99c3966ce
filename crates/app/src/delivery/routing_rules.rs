//! Routing rules: the contacts of a routing source (`config.route`) go to the tenant of
//! the first rule whose conditions they all meet (administrators only).

use ee_store::sources::{self, RoutingRule};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::AppError;
use crate::audit::Change;
use crate::input::invalid;
use crate::read::Read;
use crate::write::Write;

#[derive(Debug, Serialize, ToSchema)]
pub struct RuleOut {
    pub id: String,
    pub priority: i64,
    #[schema(value_type = Object)]
    pub conditions: Value,
    pub tenant_id: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRule {
    /// Lower runs first.
    pub priority: i64,
    /// Any of category, tag, country, language, source; all must hold.
    #[schema(value_type = Object)]
    pub conditions: Value,
    #[serde(alias = "tenant")]
    pub tenant_id: String,
}

impl From<RoutingRule> for RuleOut {
    fn from(r: RoutingRule) -> Self {
        Self {
            id: r.id,
            priority: r.priority,
            conditions: serde_json::from_str(&r.conditions).unwrap_or_default(),
            tenant_id: r.tenant_id,
        }
    }
}

/// Adds a rule; its conditions are category, tag, country, language or source, each a
/// string, all of which must hold.
pub async fn create(w: &mut Write, body: CreateRule) -> Result<RuleOut, AppError> {
    ee_core::contact_conditions::check(&body.conditions, &ee_core::contact_conditions::KEYS, false)
        .map_err(|why| invalid("conditions", why))?;
    let now = w.now;
    let tenant = crate::access::tenants::find(&mut w.tx, &body.tenant_id)
        .await
        .map_err(|_| invalid("tenant_id", "names no tenant"))?;
    let rule = sources::add_rule(
        &mut w.tx,
        body.priority,
        &body.conditions.to_string(),
        &tenant.id,
        now,
    )
    .await?;
    let out = RuleOut {
        id: rule.id,
        priority: rule.priority,
        conditions: body.conditions,
        tenant_id: rule.tenant_id,
    };
    w.record(Change {
        action: "routing_rule.create",
        resource_type: "routing_rule",
        resource_id: Some(&out.id),
        tenant_id: Some(&out.tenant_id),
        before: None,
        after: serde_json::to_value(&out).ok(),
    })
    .await?;
    Ok(out)
}

/// Removes a rule.
pub async fn delete(w: &mut Write, id: &str) -> Result<(), AppError> {
    sources::delete_rule(&mut w.tx, id)
        .await
        .map_err(AppError::from_store("routing rule"))?;
    w.record(Change {
        action: "routing_rule.delete",
        resource_type: "routing_rule",
        resource_id: Some(id),
        tenant_id: None,
        before: None,
        after: None,
    })
    .await
}

/// The routing rules, in the order they are tried.
pub async fn list(read: &mut Read) -> Result<Vec<RoutingRule>, AppError> {
    Ok(sources::rules(read.conn()).await?)
}
