//! DNS: the resolver with configurable name servers, MX/SPF/DKIM/DMARC/PTR checks and
//! DNSBL look-ups. Filled by the sending-infrastructure issue; the crate boundary exists
//! now so that dependencies keep pointing one way (see ARCHITECTURE.md).
