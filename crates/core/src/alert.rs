//! Alerts: how urgent one is.

use serde::{Deserialize, Serialize};

/// `critical` wants someone now (an IP blacklisted or quarantined, a campaign paused by
/// its bounce rate, the node's disk); `warning` can wait for working hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Warning,
    Critical,
}

crate::names::names!(Severity {
    Warning => "warning",
    Critical => "critical",
});
