//! DNS for Email-Engine: a resolver whose name servers are configurable
//! (`EE_DNS_SERVERS`), the checks of a sending domain (SPF evaluated per RFC 7208,
//! DKIM, DMARC, MX, forward-confirmed PTR) and DNS blacklist look-ups.

pub mod checks;
pub mod dnsbl;
pub mod records;
mod resolver;
pub mod spf;
#[cfg(feature = "testing")]
pub mod testing;

pub use resolver::{DnsError, Resolver, ResolverSettings, SpfVerdict};
