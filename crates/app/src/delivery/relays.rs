//! Relays (smarthosts such as PowerMTA's listener) a tenant delivers through: created,
//! changed and deleted with their audit entry; passwords sealed, never shown.

use ee_core::outbound::OutboundPolicy;
use ee_core::secrets::Sealer;
use ee_core::timefmt::to_rfc3339;
use ee_mail::smtp::Security;
use ee_store::AnyConnection;
use ee_store::Scope;
use ee_store::StoreError;
pub use ee_store::relays::Relay;
use ee_store::relays::{self, NewRelay};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::delivery::RELAY_PASSWORD_PURPOSE;
use crate::error::AppError;
use crate::input::invalid;
use crate::write::{Deletable, Write};

#[derive(Debug, Serialize, ToSchema)]
pub struct RelayOut {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub host: String,
    pub port: i64,
    pub username: Option<String>,
    /// Whether a password is stored (it is never returned).
    pub has_password: bool,
    /// none, starttls or tls.
    pub tls: String,
    /// The relay is PowerMTA: messages carry its directives (X-Virtual-MTA, X-Job) and
    /// X-Campaign-ID; to any other relay they would reach recipients, so they are left out.
    pub powermta: bool,
    /// Its share when the tenant spreads its mail by weight (`relay_order: weighted`).
    pub weight: i64,
    /// At most this many messages an hour through it; beyond, the next relay takes them.
    pub max_per_hour: Option<i64>,
    /// At most this many connections open to it at once (across the nodes).
    pub max_connections: Option<i64>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Relay> for RelayOut {
    fn from(r: Relay) -> Self {
        Self {
            id: r.id,
            tenant_id: r.tenant_id,
            name: r.name,
            host: r.host,
            port: r.port,
            username: r.username,
            has_password: r.password_sealed.is_some(),
            tls: r.tls,
            powermta: r.powermta,
            weight: r.weight,
            max_per_hour: r.max_per_hour,
            max_connections: r.max_connections,
            created_at: to_rfc3339(r.created_at),
            updated_at: to_rfc3339(r.updated_at),
        }
    }
}

/// A relay as a request describes it: every field for a new one, the fields to change
/// otherwise.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RelayIn {
    pub name: Option<String>,
    /// Host name or IP of the smarthost (PowerMTA's listener, any relay).
    pub host: Option<String>,
    pub port: Option<u16>,
    pub username: Option<String>,
    /// Sealed at rest, never returned.
    pub password: Option<String>,
    /// none, starttls (default) or tls.
    pub tls: Option<String>,
    /// Whether the relay is PowerMTA (true when absent, as in the seeds): only then do
    /// messages carry X-Virtual-MTA, X-Job and X-Campaign-ID.
    pub powermta: Option<bool>,
    /// 1 (default) to 1000: its share when the tenant spreads its mail by weight.
    pub weight: Option<i64>,
    /// Messages an hour through it, 1 to 10 000 000; 0 removes the limit.
    pub max_per_hour: Option<i64>,
    /// Connections open to it at once, 1 to 1000; 0 removes the limit.
    pub max_connections: Option<i64>,
    #[serde(alias = "tenant")]
    pub tenant_id: Option<String>,
}

/// What checking and sealing a relay needs.
pub struct RelayRules<'a> {
    pub outbound: &'a OutboundPolicy,
    pub sealer: &'a Sealer,
}

fn tls_of(value: Option<&str>) -> Result<String, AppError> {
    match Security::parse(value.unwrap_or("starttls")) {
        Some(Security::Opportunistic) | None => {
            Err(invalid("tls", "must be none, starttls or tls"))
        }
        Some(s) => Ok(s.as_str().to_owned()),
    }
}

fn weight_of(weight: i64) -> Result<i64, AppError> {
    if !(1..=ee_core::relay_choice::MAX_WEIGHT).contains(&weight) {
        return Err(invalid(
            "weight",
            format!("must be 1 to {}", ee_core::relay_choice::MAX_WEIGHT),
        ));
    }
    Ok(weight)
}

/// A limit of the relay: none for 0, else within `1..=most`.
fn limit_of(field: &str, value: i64, most: i64) -> Result<Option<i64>, AppError> {
    match value {
        0 => Ok(None),
        v if (1..=most).contains(&v) => Ok(Some(v)),
        _ => Err(invalid(
            field,
            format!("must be 1 to {most}, or 0 for none"),
        )),
    }
}

const MOST_PER_HOUR: i64 = 10_000_000;
const MOST_CONNECTIONS: i64 = 1000;

fn port_of(port: u16) -> Result<u16, AppError> {
    if port == 0 {
        return Err(invalid("port", "must be 1 to 65535"));
    }
    Ok(port)
}

impl RelayRules<'_> {
    /// A relay's host: a name or an address this server may connect to
    /// (`ee_core::outbound`; a name is checked again when resolved, before each connection).
    fn host(&self, value: &str) -> Result<String, AppError> {
        let host = value.trim();
        let ok = !host.is_empty()
            && host.len() <= 253
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
        if !ok {
            return Err(invalid("host", "must be a host name or an IP address"));
        }
        self.outbound
            .check_host(host)
            .map_err(|refused| invalid("host", refused.to_string()))?;
        Ok(host.trim_matches(['[', ']']).to_owned())
    }

    fn seal(&self, password: &str) -> String {
        self.sealer
            .seal(RELAY_PASSWORD_PURPOSE, password.as_bytes())
    }
}

/// Adds a relay to `tenant_id`.
pub async fn create(
    w: &mut Write,
    rules: &RelayRules<'_>,
    tenant_id: &str,
    input: &RelayIn,
) -> Result<RelayOut, AppError> {
    let name = input
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| invalid("name", "is required"))?;
    let host = rules.host(
        input
            .host
            .as_deref()
            .ok_or_else(|| invalid("host", "is required"))?,
    )?;
    let port = port_of(input.port.ok_or_else(|| invalid("port", "is required"))?)?;
    if input.password.is_some() && input.username.is_none() {
        return Err(invalid("username", "is required with a password"));
    }
    let tls = tls_of(input.tls.as_deref())?;
    let sealed = input.password.as_deref().map(|p| rules.seal(p));
    let relay = relays::insert(
        &mut w.tx,
        tenant_id,
        &NewRelay {
            name,
            host: &host,
            port,
            username: input.username.as_deref(),
            password_sealed: sealed.as_deref(),
            tls: &tls,
            powermta: input.powermta.unwrap_or(true),
            weight: weight_of(input.weight.unwrap_or(1))?,
            max_per_hour: limit_of(
                "max_per_hour",
                input.max_per_hour.unwrap_or(0),
                MOST_PER_HOUR,
            )?,
            max_connections: limit_of(
                "max_connections",
                input.max_connections.unwrap_or(0),
                MOST_CONNECTIONS,
            )?,
        },
        w.now,
    )
    .await?;
    let out = RelayOut::from(relay);
    w.created("relay.create", &out).await?;
    Ok(out)
}

/// Changes the fields `input` gives of a relay the caller may see (an empty username or
/// password removes it).
pub async fn update(
    w: &mut Write,
    rules: &RelayRules<'_>,
    id: &str,
    input: &RelayIn,
) -> Result<RelayOut, AppError> {
    if input.tenant_id.is_some() {
        return Err(invalid(
            "tenant_id",
            "a relay cannot move to another tenant",
        ));
    }
    let mut relay: Relay = w.find(id).await?;
    let before = RelayOut::from(relay.clone());
    if let Some(name) = input.name.as_deref().map(str::trim) {
        if name.is_empty() {
            return Err(invalid("name", "must not be empty"));
        }
        relay.name = name.to_owned();
    }
    if let Some(host) = &input.host {
        relay.host = rules.host(host)?;
    }
    if let Some(port) = input.port {
        relay.port = i64::from(port_of(port)?);
    }
    if input.tls.is_some() {
        relay.tls = tls_of(input.tls.as_deref())?;
    }
    if let Some(powermta) = input.powermta {
        relay.powermta = powermta;
    }
    if let Some(weight) = input.weight {
        relay.weight = weight_of(weight)?;
    }
    if let Some(most) = input.max_per_hour {
        relay.max_per_hour = limit_of("max_per_hour", most, MOST_PER_HOUR)?;
    }
    if let Some(most) = input.max_connections {
        relay.max_connections = limit_of("max_connections", most, MOST_CONNECTIONS)?;
    }
    if input.username.is_some() {
        relay.username = input.username.clone().filter(|u| !u.is_empty());
    }
    if let Some(password) = &input.password {
        relay.password_sealed = Some(password)
            .filter(|p| !p.is_empty())
            .map(|p| rules.seal(p));
    }
    relays::update(&mut w.tx, &relay, w.now).await?;
    let out = RelayOut::from(relays::get(&mut w.tx, &relay.id, Scope::All).await?);
    w.changed("relay.update", &before, &out).await?;
    Ok(out)
}

impl Deletable for Relay {
    const DELETED: &'static str = "relay.delete";
    type Out = RelayOut;

    async fn delete(conn: &mut AnyConnection, id: &str) -> Result<(), StoreError> {
        relays::delete(conn, id).await
    }
}

crate::write::audited!(RelayOut, "relay");

/// The relays the caller may see, by name.
pub async fn list(read: &mut crate::read::Read) -> Result<Vec<Relay>, AppError> {
    let (conn, scope) = read.parts();
    Ok(relays::list(conn, scope).await?)
}
