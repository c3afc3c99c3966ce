//! Traffic shaping from replies, as data: which provider an MX host belongs to, and what
//! to do when a provider's reply says to slow down (suspend an IP there for an hour, send
//! at most so many messages an hour, open fewer connections …), for how long.
//!
//! The shipped data (`shipped.txt`) comes with the binary; a deployment's own file
//! (`EE_SHAPING_RULES_FILE`) is read first: its providers' MX suffixes and its rules come
//! before the shipped ones, so a line of it overrides what it meets first. The state the
//! rules set is kept in the database (`ee_store::shaping`) and read by every node.
//!
//! ```text
//! provider gmail google.com googlemail.com
//! rule gmail status 4.7.28 then suspend for 15m and connections 1 for 2h
//! rule * code 421 text "too many connections" after 3/h then connections 1 for 30m
//! ```

mod parse;
#[cfg(test)]
mod tests;

use serde::Serialize;

use crate::delivery::Provider;
use crate::feedback::Reply;
use crate::reply_pattern::{Condition, all_hold};
pub use crate::reply_pattern::{Origin, RulesError};

/// The data shipped with the binary.
pub const SHIPPED: &str = include_str!("shipped.txt");

/// Lines a shaping file may hold at most, and MX suffixes per provider.
pub const MAX_LINES: usize = 5_000;
pub const MAX_SUFFIXES: usize = 64;

/// A provider's name: lower-case letters, digits and `-`, up to 32.
pub fn valid_provider_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A provider and the MX host suffixes that name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderDef {
    pub name: String,
    pub mx_suffixes: Vec<String>,
    pub origin: Origin,
    pub line: usize,
}

/// When a rule acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// At the first reply it matches.
    Now,
    /// When it has matched this many replies within a clock hour, on one path.
    PerHour(u32),
}

/// What a rule does, and to whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// No more attempts on the path (the IP, relay or host address) at the provider.
    Suspend,
    /// At most `count` messages per `per_secs` on the path at the provider.
    Rate { count: u32, per_secs: u32 },
    /// At most this many connections at once on the path at the provider.
    Connections(u32),
    /// At most this many messages on one connection.
    PerConnection(u32),
    /// No more attempts for the tenant at the provider, from any of its IPs.
    SuspendTenant,
    /// No more attempts for the campaign at the provider.
    SuspendCampaign,
    /// Nothing: an operator's line that keeps a shipped rule from acting.
    Nothing,
}

/// The kind of an action, as stored and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    Suspend,
    Rate,
    Connections,
    PerConnection,
    SuspendTenant,
    SuspendCampaign,
}

impl ActionKind {
    pub const ALL: [Self; 6] = [
        Self::Suspend,
        Self::Rate,
        Self::Connections,
        Self::PerConnection,
        Self::SuspendTenant,
        Self::SuspendCampaign,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Suspend => "suspend",
            Self::Rate => "rate",
            Self::Connections => "connections",
            Self::PerConnection => "per_connection",
            Self::SuspendTenant => "suspend_tenant",
            Self::SuspendCampaign => "suspend_campaign",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl Action {
    pub fn kind(self) -> Option<ActionKind> {
        Some(match self {
            Self::Suspend => ActionKind::Suspend,
            Self::Rate { .. } => ActionKind::Rate,
            Self::Connections(_) => ActionKind::Connections,
            Self::PerConnection(_) => ActionKind::PerConnection,
            Self::SuspendTenant => ActionKind::SuspendTenant,
            Self::SuspendCampaign => ActionKind::SuspendCampaign,
            Self::Nothing => return None,
        })
    }

    /// The action's number(s) as stored: (count, seconds).
    pub fn values(self) -> (Option<u32>, Option<u32>) {
        match self {
            Self::Rate { count, per_secs } => (Some(count), Some(per_secs)),
            Self::Connections(n) | Self::PerConnection(n) => (Some(n), None),
            _ => (None, None),
        }
    }

    /// Back from its stored form.
    pub fn stored(kind: ActionKind, count: Option<u32>, per_secs: Option<u32>) -> Self {
        let n = count.unwrap_or(1).max(1);
        match kind {
            ActionKind::Suspend => Self::Suspend,
            ActionKind::Rate => Self::Rate {
                count: n,
                per_secs: per_secs.unwrap_or(3600).max(1),
            },
            ActionKind::Connections => Self::Connections(n),
            ActionKind::PerConnection => Self::PerConnection(n),
            ActionKind::SuspendTenant => Self::SuspendTenant,
            ActionKind::SuspendCampaign => Self::SuspendCampaign,
        }
    }
}

/// Whom a state holds back: a sending path (one of our IPs, a relay, or the host's own
/// address for a tenant without IPs), a tenant or a campaign — always at one provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Ip,
    Relay,
    Host,
    Tenant,
    Campaign,
}

impl Scope {
    pub const ALL: [Self; 5] = [
        Self::Ip,
        Self::Relay,
        Self::Host,
        Self::Tenant,
        Self::Campaign,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ip => "ip",
            Self::Relay => "relay",
            Self::Host => "host",
            Self::Tenant => "tenant",
            Self::Campaign => "campaign",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// The path a message takes: what a path-wide state is keyed by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Path {
    Ip(String),
    Relay(String),
    Host,
}

impl Path {
    pub fn scope(&self) -> Scope {
        match self {
            Self::Ip(_) => Scope::Ip,
            Self::Relay(_) => Scope::Relay,
            Self::Host => Scope::Host,
        }
    }

    pub fn subject(&self) -> &str {
        match self {
            Self::Ip(id) | Self::Relay(id) => id,
            Self::Host => "",
        }
    }
}

/// One rule line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapingRule {
    /// The provider it applies to; `None` for `*` (any, relays included).
    pub provider: Option<String>,
    conditions: Vec<Condition>,
    pub trigger: Trigger,
    /// What it does, each for its duration (seconds); one `Nothing` for `none`.
    pub actions: Vec<(Action, i64)>,
    pub line: usize,
    pub origin: Origin,
    /// The line as written.
    pub text: String,
}

impl ShapingRule {
    /// A key naming the rule across restarts while its file is unchanged (hit counters).
    pub fn key(&self) -> String {
        format!("{}:{}", self.origin.as_str(), self.line)
    }
}

impl Action {
    /// Whom the action holds back for a message on `path` of `tenant`/`campaign`; `None`
    /// when it holds no one (a campaign rule on a message of no campaign).
    pub fn target(
        self,
        path: &Path,
        tenant_id: &str,
        campaign_id: Option<&str>,
    ) -> Option<(Scope, String)> {
        match self {
            Action::Nothing => None,
            Action::SuspendTenant => Some((Scope::Tenant, tenant_id.to_owned())),
            Action::SuspendCampaign => campaign_id.map(|c| (Scope::Campaign, c.to_owned())),
            _ => Some((path.scope(), path.subject().to_owned())),
        }
    }
}

/// The providers and the rules in effect.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Shaping {
    providers: Vec<ProviderDef>,
    rules: Vec<ShapingRule>,
}

impl Shaping {
    /// The shipped data (tested to parse).
    pub fn shipped() -> Self {
        #[allow(clippy::expect_used)]
        parse::parse(SHIPPED, Origin::Shipped, &[])
            .expect("the shipped shaping data parses (tested)")
    }

    /// A deployment's file read before the shipped data.
    pub fn with_extra(extra: &str) -> Result<Self, RulesError> {
        let shipped = Self::shipped();
        let mut own = parse::parse(extra, Origin::Operator, &shipped.providers)?;
        own.providers.extend(shipped.providers);
        own.rules.extend(shipped.rules);
        Ok(own)
    }

    pub fn providers(&self) -> &[ProviderDef] {
        &self.providers
    }

    pub fn rules(&self) -> &[ShapingRule] {
        &self.rules
    }

    /// Whether a provider of this name is defined (`other` and `relay` always are).
    pub fn knows(&self, name: &str) -> bool {
        name == Provider::OTHER
            || name == Provider::RELAY
            || self.providers.iter().any(|p| p.name == name)
    }

    /// The provider whose MX suffix is the longest that `host` ends with (an operator's
    /// before a shipped one of the same length); `other` when none.
    pub fn provider_of_mx(&self, host: &str) -> Provider {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let mut best: Option<(&str, usize)> = None;
        for def in &self.providers {
            for suffix in &def.mx_suffixes {
                let under = host == *suffix
                    || (host.len() > suffix.len()
                        && host.ends_with(suffix.as_str())
                        && host.as_bytes()[host.len() - suffix.len() - 1] == b'.');
                if under && best.is_none_or(|(_, len)| suffix.len() > len) {
                    best = Some((&def.name, suffix.len()));
                }
            }
        }
        best.map_or_else(Provider::other, |(name, _)| Provider::named(name))
    }

    /// The first rule for `provider` the reply meets.
    pub fn matching(&self, provider: &Provider, reply: &Reply) -> Option<&ShapingRule> {
        let text = reply.diagnostic.to_lowercase();
        self.rules.iter().find(|r| {
            r.provider.as_deref().is_none_or(|p| p == provider.as_str())
                && all_hold(&r.conditions, reply, &text)
        })
    }
}

/// A state in force, as read back from the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Active {
    pub provider: String,
    pub scope: Scope,
    pub subject: String,
    pub action: Action,
    pub until: i64,
}

/// What the states in force make of one message's attempt at one provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Effect {
    /// Held back until then (the latest end of what suspends it).
    pub held_until: Option<i64>,
    /// At most one message per this many milliseconds on the path.
    pub interval_ms: Option<i64>,
    pub connections: Option<u32>,
    pub per_connection: Option<u32>,
}

impl Effect {
    /// The states that apply to a message on `path` of `tenant`/`campaign` at `provider`,
    /// at `now`, combined: the longest suspension, the lowest of each limit.
    pub fn of(
        states: &[Active],
        provider: &Provider,
        path: &Path,
        tenant_id: &str,
        campaign_id: Option<&str>,
        now: i64,
    ) -> Self {
        let mut effect = Self::default();
        for state in states {
            if state.until <= now || state.provider != provider.as_str() {
                continue;
            }
            let applies = match state.scope {
                Scope::Tenant => state.subject == tenant_id,
                Scope::Campaign => campaign_id == Some(state.subject.as_str()),
                scope => scope == path.scope() && state.subject == path.subject(),
            };
            if !applies {
                continue;
            }
            let lower = |current: Option<u32>, n: u32| Some(current.map_or(n, |c| c.min(n)));
            match state.action {
                Action::Suspend | Action::SuspendTenant | Action::SuspendCampaign => {
                    effect.held_until = effect.held_until.max(Some(state.until));
                }
                Action::Rate { count, per_secs } => {
                    let interval = (i64::from(per_secs) * 1000 / i64::from(count.max(1))).max(1);
                    effect.interval_ms = effect.interval_ms.max(Some(interval));
                }
                Action::Connections(n) => effect.connections = lower(effect.connections, n),
                Action::PerConnection(n) => effect.per_connection = lower(effect.per_connection, n),
                Action::Nothing => {}
            }
        }
        effect
    }
}
