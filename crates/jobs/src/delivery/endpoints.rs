//! Where a message is handed over: the tenant's relay (its address checked against the
//! outbound policy, its password opened), or the recipient domain's MX hosts from the
//! chosen IP.

use super::*;

/// Why no MX host can be reached.
pub(super) enum Unreachable {
    /// The outbound policy refuses every address (the reason names one): the message
    /// fails.
    Refused(String),
    /// No MX host has an address (of the chosen IP's family): it waits.
    NoAddress,
}

impl Engine {
    /// The relay's endpoint, or why the message cannot go through it.
    pub(super) async fn relay_endpoint(
        &self,
        relay: &ee_store::relays::Relay,
        chosen: &Chosen,
    ) -> Result<Endpoint, String> {
        let services = &self.services;
        let credentials = match (&relay.username, &relay.password_sealed) {
            (Some(user), Some(sealed)) => {
                let password = services
                    .delivery
                    .sealer
                    .as_ref()
                    .and_then(|s| s.open(RELAY_PASSWORD_PURPOSE, sealed).ok())
                    .and_then(|p| String::from_utf8(p).ok())
                    .ok_or("the relay password cannot be opened")?;
                Some((user.clone(), password))
            }
            _ => None,
        };
        let address = relay_address(&services.outbound, &relay.host, relay.port).await?;
        Ok(Endpoint {
            address,
            port: relay.port as u16,
            tls_name: relay.host.clone(),
            security: Security::parse(&relay.tls).unwrap_or(Security::Starttls),
            credentials,
            local_ip: None,
            helo: chosen
                .hostname
                .clone()
                .unwrap_or_else(|| helo_default(&services.delivery.public_url)),
            timeout: services.delivery.timeout,
            allow_invalid_certs: services.delivery.allow_invalid_certs,
        })
    }

    /// The first three MX hosts with an address of the chosen IP's family that the
    /// outbound policy allows, in preference order.
    pub(super) async fn mx_endpoints(
        &self,
        hosts: &[String],
        chosen: &Chosen,
        security: Security,
    ) -> Result<Vec<Endpoint>, Unreachable> {
        let services = &self.services;
        let mut endpoints = Vec::new();
        let mut refused = None;
        for host in hosts.iter().take(3) {
            let addresses = services.resolver.addresses(host).await.unwrap_or_default();
            let family_ok = |a: &IpAddr| {
                chosen
                    .address
                    .is_none_or(|local| local.is_ipv4() == a.is_ipv4())
            };
            // A recipient's domain may point its MX anywhere, this machine included
            // (where a local MTA might relay for it): the outbound policy applies.
            let mut allowed = |a: &IpAddr| match services.outbound.check_ip(*a) {
                Ok(()) => true,
                Err(e) => {
                    refused = Some(format!("MX host {} is at {e}", host.trim_end_matches('.')));
                    false
                }
            };
            if let Some(address) = addresses
                .into_iter()
                .filter(|a| family_ok(a))
                .find(|a| allowed(a))
            {
                endpoints.push(Endpoint {
                    address: address.to_string(),
                    port: services.delivery.mx_port,
                    tls_name: host.trim_end_matches('.').to_owned(),
                    security,
                    credentials: None,
                    local_ip: chosen.address,
                    helo: chosen.hostname.clone().unwrap_or_else(|| {
                        chosen.ip_text.as_ref().map_or_else(
                            || helo_default(&services.delivery.public_url),
                            |ip| format!("[{ip}]"),
                        )
                    }),
                    timeout: services.delivery.timeout,
                    // Opportunistic TLS takes any certificate; an enforced MTA-STS
                    // policy wants it valid for the MX host.
                    allow_invalid_certs: security == Security::Opportunistic,
                });
            }
        }
        match (endpoints.is_empty(), refused) {
            (false, _) => Ok(endpoints),
            (true, Some(reason)) => Err(Unreachable::Refused(reason)),
            (true, None) => Err(Unreachable::NoAddress),
        }
    }
}

/// The address a relay's host stands for, if the outbound policy lets us connect to it:
/// checked at each connection, not only when the relay was saved, since a name can come
/// to resolve elsewhere.
async fn relay_address(
    policy: &ee_core::outbound::OutboundPolicy,
    host: &str,
    port: i64,
) -> Result<String, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        policy.check_ip(ip).map_err(|e| format!("relay {e}"))?;
        return Ok(ip.to_string());
    }
    let port = u16::try_from(port).unwrap_or(25);
    let found = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("the relay's host `{host}` does not resolve: {e}"))?;
    let mut refused = None;
    for address in found {
        match policy.check_ip(address.ip()) {
            Ok(()) => return Ok(address.ip().to_string()),
            Err(e) => refused = Some(e),
        }
    }
    Err(match refused {
        Some(e) => format!("relay `{host}` resolves to {}", e),
        None => format!("the relay's host `{host}` has no address"),
    })
}
