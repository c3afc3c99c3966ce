//! The `_smtp._tls` record (RFC 8460 §3) read from a loopback DNS server: where a domain
//! wants its TLS reports, with the limits we hold it to.
#![allow(clippy::unwrap_used)]

use ee_core::tls_rpt::{Destination, MAX_DESTINATIONS};
use ee_dns::Resolver;
use ee_dns::testing::{Rec, TestDnsServer, Zone};

#[tokio::test]
async fn destinations_are_read_with_limits() {
    let many: Vec<String> = (0..9).map(|i| format!("mailto:r{i}@x.test")).collect();
    let mut zone = Zone::new();
    zone.add(
        "_smtp._tls.both.test",
        Rec::txt("v=TLSRPTv1; rua=mailto:tls@both.test,https://r.both.test/v1"),
    )
    // RFC 8460 §3: HTTPS only; plain HTTP is dropped.
    .add(
        "_smtp._tls.http.test",
        Rec::txt("v=TLSRPTv1; rua=http://r.http.test/v1"),
    )
    .add(
        "_smtp._tls.many.test",
        Rec::txt(&format!("v=TLSRPTv1; rua={}", many.join(","))),
    )
    // Two records are as none.
    .add(
        "_smtp._tls.two.test",
        Rec::txt("v=TLSRPTv1; rua=mailto:a@two.test"),
    )
    .add(
        "_smtp._tls.two.test",
        Rec::txt("v=TLSRPTv1; rua=mailto:b@two.test"),
    )
    .add("_smtp._tls.other.test", Rec::txt("v=spf1 -all"));
    let server = TestDnsServer::start(zone).await.unwrap();
    let resolver = Resolver::new(&server.resolver_settings()).unwrap();
    assert_eq!(
        resolver.tls_rpt("both.test").await.unwrap(),
        Some(vec![
            Destination::Mail("tls@both.test".into()),
            Destination::Https("https://r.both.test/v1".into()),
        ])
    );
    assert_eq!(resolver.tls_rpt("http.test").await.unwrap(), None);
    assert_eq!(
        resolver.tls_rpt("many.test").await.unwrap().unwrap().len(),
        MAX_DESTINATIONS
    );
    assert_eq!(resolver.tls_rpt("two.test").await.unwrap(), None);
    assert_eq!(resolver.tls_rpt("other.test").await.unwrap(), None);
    assert_eq!(resolver.tls_rpt("absent.test").await.unwrap(), None);
}
