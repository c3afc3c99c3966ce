//! Feedback sources end to end: PowerMTA's accounting file followed across rotations
//! without a line lost or read twice, and the bounce listener taking reports for per-message
//! return paths over SMTP, refusing strangers and keeping what it cannot read.
#![allow(clippy::unwrap_used)]

mod common;

use common::sending::{bounce_listener, bouncing_brand, smtp_dialog};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn the_accounting_file_is_followed_across_rotations_without_loss_or_repeat() {
    let (app, smtp, key) = bouncing_brand().await;
    let names = ["a", "b", "c", "d", "e"];
    for n in names {
        let sent = app
            .post("/api/v2/messages", &key,
                json!({"to": format!("{n}@example.test"), "subject": "Hi", "html": "<p>hi</p>", "from_email": "hello@brand.test"}))
            .await;
        assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.body);
    }
    app.deliver().await;
    let received = smtp.received();
    let line = |n: &str| {
        let to = format!("{n}@example.test");
        let orig = &received.iter().find(|r| r.rcpt_to == to).unwrap().mail_from;
        let t = ee_core::timefmt::to_rfc3339(app.clock.now_ms());
        format!("b,{t},{orig},{to},failed,5.1.1,smtp;550 5.1.1 user unknown\n")
    };
    const HEADER: &str = "type,timeLogged,orig,rcpt,dsnAction,dsnStatus,dsnDiag,dlvSourceIp\n";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("acct.csv");
    let follow = || ee_jobs::accounting::follow_once(&app.services, &path);

    // A line PowerMTA is still writing waits for its end.
    let b = line("b");
    let (b_start, b_end) = b.split_at(20);
    std::fs::write(&path, format!("{HEADER}{}{b_start}", line("a"))).unwrap();
    assert_eq!(follow().await.unwrap().applied, 1);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut file, b_end.as_bytes()).unwrap();
    assert_eq!(follow().await.unwrap().applied, 1);
    assert_eq!(follow().await.unwrap().applied, 0, "nothing read twice");

    // Rotation: the old file gets one more line after it was renamed, the new one starts.
    let rotated = dir.path().join("acct-2026-12-01.csv");
    std::fs::rename(&path, &rotated).unwrap();
    std::io::Write::write_all(&mut file, line("c").as_bytes()).unwrap();
    std::fs::write(&path, format!("{HEADER}{}", line("d"))).unwrap();
    let report = follow().await.unwrap();
    assert_eq!((report.rotated_lines, report.applied), (1, 2), "{report:?}");

    // Cut short in place (copytruncate): read again from the start.
    std::fs::write(&path, format!("{HEADER}{}", line("e"))).unwrap();
    assert_eq!(follow().await.unwrap().applied, 1);

    // Mail PowerMTA sent for someone else (MailWizz) from the tenant's IP: its delivery
    // counts as that IP's traffic, which warm-up reads, and belongs to the IP's tenant.
    let ip = app
        .post(
            "/api/v1/ips",
            &key,
            json!({"ip": "192.0.2.77", "hostname": "mta.brand.test", "state": "active"}),
        )
        .await;
    assert_eq!(ip.status, StatusCode::CREATED, "{}", ip.body);
    let t = ee_core::timefmt::to_rfc3339(app.clock.now_ms());
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(
        &mut file,
        format!(
            "d,{t},list@mw.brand.test,reader@example.org,relayed,2.0.0,smtp;250 ok,192.0.2.77\n"
        )
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(follow().await.unwrap().applied, 1);
    let quota = app.get("/api/v1/warmup/quota?tenant_id=brand", &key).await;
    let rows = quota.body["items"]
        .as_array()
        .or(quota.body.as_array())
        .cloned()
        .unwrap_or_default();
    let row = rows
        .iter()
        .find(|q| q["ip"] == "192.0.2.77")
        .cloned()
        .unwrap_or_default();
    assert_eq!(row["sent_today"], 1, "{}", quota.body);

    let events = app
        .get(
            "/api/v1/feedback/events?source=pmta_accounting&class=hard",
            &key,
        )
        .await;
    let mut recipients: Vec<&str> = events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["recipient"].as_str().unwrap())
        .collect();
    recipients.sort();
    assert_eq!(
        recipients,
        [
            "a@example.test",
            "b@example.test",
            "c@example.test",
            "d@example.test",
            "e@example.test"
        ]
    );
    assert!(
        events.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["message_id"].is_string())
    );
    app.finish().await;
}

#[tokio::test]
async fn the_bounce_listener_takes_reports_for_return_paths_and_keeps_what_it_cannot_read() {
    let (app, smtp, key) = bouncing_brand().await;
    let sent = app
        .post("/api/v2/messages", &key,
            json!({"to": "gone@example.test", "subject": "Hi", "html": "<p>hi</p>", "from_email": "hello@brand.test"}))
        .await;
    let id = sent.body["id"].as_str().unwrap().to_owned();
    app.deliver().await;
    let return_path = smtp.received()[0].mail_from.clone();

    let (port, _stop) = bounce_listener(&app, &["fbl@bounces.brand.test"]).await;

    // A DSN to the message's return path: no Message-ID needed, the address names it.
    let dsn = "From: MAILER-DAEMON@mx.example.test\nTo: whoever\nSubject: Undelivered\nMIME-Version: 1.0\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"Z\"\n\n--Z\nContent-Type: text/plain\n\nfailed\n\
--Z\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.test\n\nFinal-Recipient: rfc822; gone@example.test\n\
Action: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 The email account that you tried to reach does not exist\n\n--Z--";
    let replies = smtp_dialog(port, &return_path, dsn).await;
    assert!(replies.last().unwrap().starts_with("250"), "{replies:?}");
    let m = app.get(&format!("/api/v2/messages/{id}"), &key).await;
    assert_eq!(m.body["state"], "bounced", "{}", m.body);
    let events = app.get("/api/v1/feedback/events?source=dsn", &key).await;
    assert_eq!(
        events.body["items"][0]["message_id"],
        id.as_str(),
        "{}",
        events.body
    );
    assert_eq!(events.body["items"][0]["class"], "hard");

    // A forged return path and a stranger are refused at RCPT.
    let forged = return_path.replacen("b-", "b-0", 1);
    for rcpt in [forged.as_str(), "postmaster@example.test"] {
        let replies = smtp_dialog(port, rcpt, "").await;
        assert!(
            replies.last().unwrap().starts_with("550"),
            "{rcpt}: {replies:?}"
        );
    }

    // An out-of-office reply to the feedback address is read as one (the message
    // arrived): accepted, nothing kept, nothing applied.
    let auto = "From: someone@example.test\nTo: fbl@bounces.brand.test\nSubject: Out of office\n\nBack on Monday.";
    let replies = smtp_dialog(port, "fbl@bounces.brand.test", auto).await;
    assert!(replies.last().unwrap().starts_with("250"), "{replies:?}");
    let kept = app.get("/api/v1/feedback/unread", &app.admin).await;
    assert_eq!(kept.body["items"], json!([]), "{}", kept.body);
    // A message that is no report at all is kept for a look, not dropped.
    let note = "From: someone@example.test\nTo: fbl@bounces.brand.test\nSubject: A question\n\nWhere do I sign up?";
    let replies = smtp_dialog(port, "fbl@bounces.brand.test", note).await;
    assert!(replies.last().unwrap().starts_with("250"), "{replies:?}");
    let kept = app.get("/api/v1/feedback/unread", &app.admin).await;
    assert_eq!(
        kept.body["items"][0]["envelope_to"], "fbl@bounces.brand.test",
        "{}",
        kept.body
    );
    assert!(
        kept.body["items"][0]["raw"]
            .as_str()
            .unwrap()
            .contains("Where do I sign up?")
    );
    assert_eq!(
        app.get("/api/v1/feedback/unread", &key).await.status,
        StatusCode::FORBIDDEN
    );
    app.finish().await;
}
