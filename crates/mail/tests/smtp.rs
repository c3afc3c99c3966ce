//! The SMTP client against a real SMTP server on loopback.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use ee_core::tls_rpt::Failure;
use ee_mail::smtp::{Connection, Endpoint, Security, SmtpError};
use ee_mail::testing::{Behaviour, TestSmtpServer};

fn endpoint(server: &TestSmtpServer) -> Endpoint {
    Endpoint {
        address: server.addr.ip().to_string(),
        port: server.addr.port(),
        tls_name: "localhost".into(),
        security: Security::None,
        credentials: None,
        local_ip: None,
        helo: "mta1.brand.test".into(),
        timeout: Duration::from_secs(2),
        allow_invalid_certs: false,
    }
}

const MESSAGE: &[u8] = b"Subject: hi\r\n\r\nline\r\n.starts with a dot\r\n";

#[tokio::test]
async fn one_connection_carries_many_messages_and_survives_refusals() {
    let server = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    server.script(
        "full@x.test",
        vec![Behaviour::RefuseRcpt(452, "4.2.2 Mailbox full".into())],
    );
    server.script(
        "gone@x.test",
        vec![Behaviour::RefuseRcpt(550, "5.1.1 No such user".into())],
    );
    server.script(
        "spam@x.test",
        vec![Behaviour::RefuseData(554, "5.7.1 Looks like spam".into())],
    );
    let mut conn = Connection::open(&endpoint(&server)).await.unwrap();
    for i in 0..5 {
        let reply = conn
            .send("bounce@brand.test", &format!("r{i}@x.test"), MESSAGE)
            .await
            .unwrap();
        assert_eq!(reply.code, 250);
    }
    for (to, code) in [
        ("full@x.test", 452),
        ("gone@x.test", 550),
        ("spam@x.test", 554),
    ] {
        match conn.send("bounce@brand.test", to, MESSAGE).await {
            Err(SmtpError::Rejected(reply)) => {
                assert_eq!(reply.code, code);
                assert!(reply.text.starts_with(&code.to_string()));
            }
            other => panic!("{to}: {other:?}"),
        }
    }
    // Still usable after the refusals.
    conn.send("bounce@brand.test", "after@x.test", MESSAGE)
        .await
        .unwrap();
    conn.quit().await;
    let got = server.received();
    assert_eq!(got.len(), 6);
    assert_eq!(server.connections(), 1);
    assert_eq!(got[0].helo, "mta1.brand.test");
    assert_eq!(got[0].mail_from, "bounce@brand.test");
    // Dot-stuffing undone: the message arrives as sent.
    assert_eq!(got[0].data, MESSAGE);
}

#[tokio::test]
async fn binds_the_source_ip_and_authenticates() {
    let server = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    server.require_auth("relay-user", "s3cret");
    let mut ep = endpoint(&server);
    ep.local_ip = Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 7)));
    let mut without = Connection::open(&ep).await.unwrap();
    match without.send("a@brand.test", "b@x.test", MESSAGE).await {
        Err(SmtpError::Rejected(r)) => assert_eq!(r.code, 530),
        other => panic!("{other:?}"),
    }
    ep.credentials = Some(("relay-user".into(), "wrong".into()));
    match Connection::open(&ep).await {
        Err(SmtpError::Rejected(r)) => assert_eq!(r.code, 535),
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("a wrong password was accepted"),
    }
    ep.credentials = Some(("relay-user".into(), "s3cret".into()));
    let mut conn = Connection::open(&ep).await.unwrap();
    conn.send("a@brand.test", "b@x.test", MESSAGE)
        .await
        .unwrap();
    let got = server.received();
    assert_eq!(got[0].peer.ip(), IpAddr::V4(Ipv4Addr::new(127, 0, 0, 7)));
    assert_eq!(got[0].auth_user.as_deref(), Some("relay-user"));
}

#[tokio::test]
async fn dropped_and_silent_peers_are_network_errors() {
    let server = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    server.script("drop@x.test", vec![Behaviour::DropAfterData]);
    server.script("hang@x.test", vec![Behaviour::HangAfterData]);
    let mut ep = endpoint(&server);
    ep.timeout = Duration::from_millis(500);
    let mut conn = Connection::open(&ep).await.unwrap();
    assert!(matches!(
        conn.send("a@brand.test", "drop@x.test", MESSAGE).await,
        Err(SmtpError::Network(_))
    ));
    let mut conn = Connection::open(&ep).await.unwrap();
    assert!(matches!(
        conn.send("a@brand.test", "hang@x.test", MESSAGE).await,
        Err(SmtpError::Network(_))
    ));
    // Nothing listening: refused at connect.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    ep.port = port;
    assert!(matches!(
        Connection::open(&ep).await,
        Err(SmtpError::Network(_))
    ));
}

#[tokio::test]
async fn starttls_required_for_relays_and_taken_when_offered_by_mx_hosts() {
    let tls_server = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    tls_server.enable_starttls();
    tls_server.require_auth("relay-user", "s3cret");
    // A relay with required STARTTLS and AUTH after it (a self-signed test certificate).
    let mut ep = endpoint(&tls_server);
    ep.security = Security::Starttls;
    ep.allow_invalid_certs = true;
    ep.credentials = Some(("relay-user".into(), "s3cret".into()));
    let mut conn = Connection::open(&ep).await.unwrap();
    assert!(conn.tls);
    conn.send("a@brand.test", "b@x.test", MESSAGE)
        .await
        .unwrap();
    // Without accepting the self-signed certificate, the relay is refused, and why is
    // said in RFC 8460's terms.
    ep.allow_invalid_certs = false;
    assert!(matches!(
        Connection::open(&ep).await,
        Err(SmtpError::Tls {
            failure: Failure::CertificateNotTrusted,
            ..
        })
    ));
    // Direct delivery: opportunistic, so TLS when offered …
    let mut ep = endpoint(&tls_server);
    ep.security = Security::Opportunistic;
    ep.tls_name = "mx.example.test".into();
    ep.credentials = Some(("relay-user".into(), "s3cret".into()));
    let mut conn = Connection::open(&ep).await.unwrap();
    assert!(conn.tls);
    // Any certificate is taken, and why this one does not verify is kept.
    let info = conn.tls_info.clone().unwrap();
    assert!(!info.verified);
    assert_eq!(info.verification(), Err(Failure::CertificateNotTrusted));
    conn.send("a@brand.test", "c@x.test", MESSAGE)
        .await
        .unwrap();
    let got = tls_server.received();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|r| r.tls));
    assert_eq!(got[0].data, MESSAGE);

    // … and clear text when not; a relay that requires it fails without it.
    let plain = TestSmtpServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let mut ep = endpoint(&plain);
    ep.security = Security::Opportunistic;
    let mut conn = Connection::open(&ep).await.unwrap();
    assert!(!conn.tls);
    conn.send("a@brand.test", "d@x.test", MESSAGE)
        .await
        .unwrap();
    assert!(!plain.received()[0].tls);
    ep.security = Security::Starttls;
    assert!(matches!(
        Connection::open(&ep).await,
        Err(SmtpError::Tls {
            failure: Failure::StarttlsNotSupported,
            ..
        })
    ));
}
