//! Repository and queue behaviour on a real database (SQLite, or PostgreSQL when
//! EE_TEST_DATABASE_URL is set).
#![allow(clippy::unwrap_used)]

use ee_core::jobs::{AfterFailure, Backoff, JobState};
use ee_store::Scope;
use ee_store::jobs::{self, Enqueued, NewJob};
use ee_store::sessions::{self, RefreshOutcome};
use ee_store::testing::TestDatabase;
use ee_store::{Db, StoreError, message_leases, tenants, users};
use serde_json::json;

async fn fresh() -> (TestDatabase, Db) {
    let test_db = TestDatabase::create().await.expect("test database");
    let db = test_db.connect().await.expect("connect and migrate");
    (test_db, db)
}

#[tokio::test]
async fn migrations_are_idempotent_and_ping_works() {
    let (test_db, db) = fresh().await;
    db.migrate().await.expect("second run is a no-op");
    assert!(db.ping().await);
    db.close().await;
    test_db.drop_database().await.unwrap();
}

#[tokio::test]
async fn tenant_slugs_are_unique_and_deletion_cascades() {
    let (test_db, db) = fresh().await;
    let mut conn = db.pool().acquire().await.unwrap();
    let t = tenants::insert(
        &mut conn,
        tenants::NewTenant {
            name: "A",
            slug: "a-brand",
            settings: "{}",
        },
        1,
    )
    .await
    .unwrap();
    let dup = tenants::insert(
        &mut conn,
        tenants::NewTenant {
            name: "B",
            slug: "a-brand",
            settings: "{}",
        },
        2,
    )
    .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    let u = users::insert(
        &mut conn,
        users::NewUser {
            tenant_id: Some(&t.id),
            email: "u@a.test",
            username: None,
            password_hash: "h",
            role: ee_core::auth::Role::User,
        },
        3,
    )
    .await
    .unwrap();
    tenants::delete(&mut conn, &t.id).await.unwrap();
    assert!(matches!(
        users::get(&mut conn, &u.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        tenants::delete(&mut conn, &t.id).await,
        Err(StoreError::NotFound)
    ));
    drop(conn);
    db.close().await;
    test_db.drop_database().await.unwrap();
}

#[tokio::test]
async fn refresh_tokens_rotate_once_and_reuse_revokes_the_session() {
    let (test_db, db) = fresh().await;
    let mut conn = db.pool().acquire().await.unwrap();
    let admin = users::insert(
        &mut conn,
        users::NewUser {
            tenant_id: None,
            email: "a@x.test",
            username: None,
            password_hash: "h",
            role: ee_core::auth::Role::Admin,
        },
        0,
    )
    .await
    .unwrap();
    let session = sessions::create(&mut conn, &admin.id, 10_000, None, None, 0)
        .await
        .unwrap();
    sessions::add_refresh_token(&mut conn, &session.id, "h1", 5_000, 0)
        .await
        .unwrap();
    let first = sessions::use_refresh_token(&mut conn, "h1", 100)
        .await
        .unwrap();
    assert_eq!(
        first,
        RefreshOutcome::Rotated {
            session_id: session.id.clone(),
            user_id: admin.id.clone()
        }
    );
    sessions::add_refresh_token(&mut conn, &session.id, "h2", 5_000, 100)
        .await
        .unwrap();
    assert_eq!(
        sessions::use_refresh_token(&mut conn, "h1", 200)
            .await
            .unwrap(),
        RefreshOutcome::Reused
    );
    // The reuse revoked the session: its newer token is dead too.
    assert_eq!(
        sessions::use_refresh_token(&mut conn, "h2", 300)
            .await
            .unwrap(),
        RefreshOutcome::Invalid
    );
    assert!(matches!(
        sessions::get_live(&mut conn, &session.id, 300).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        sessions::use_refresh_token(&mut conn, "nope", 300)
            .await
            .unwrap(),
        RefreshOutcome::Invalid
    );
    drop(conn);
    db.close().await;
    test_db.drop_database().await.unwrap();
}

#[tokio::test]
async fn job_lifecycle_unique_keys_backoff_and_dead_letter() {
    let (test_db, db) = fresh().await;
    let backend = db.backend();
    let mut conn = db.pool().acquire().await.unwrap();
    let backoff = Backoff {
        base_ms: 1_000,
        max_ms: 60_000,
    };

    let job = NewJob::new("demo", json!({"n": 1}), 0)
        .unique_key("slot-1")
        .max_attempts(2);
    let created = jobs::enqueue(&mut conn, &job, 0).await.unwrap();
    assert!(matches!(created, Enqueued::Created(_)));
    let again = jobs::enqueue(&mut conn, &job, 0).await.unwrap();
    assert_eq!(again, Enqueued::Duplicate(created.id().to_owned()));

    // Not due yet: nothing to claim before its run-at.
    let later = NewJob::new("later", json!({}), 0).run_at(50_000);
    jobs::enqueue(&mut conn, &later, 0).await.unwrap();

    let claimed = jobs::claim(&mut conn, backend, "w1", 10_000, 10)
        .await
        .unwrap()
        .expect("due job");
    assert_eq!(claimed.id, created.id());
    assert_eq!(claimed.attempts, 1);
    assert!(
        jobs::claim(&mut conn, backend, "w2", 10_000, 20)
            .await
            .unwrap()
            .is_none(),
        "leased, and the other is not due"
    );

    let token = claimed.lease_token.clone().unwrap();
    let outcome = jobs::fail(&mut conn, &claimed.id, &token, "boom", backoff, 100)
        .await
        .unwrap();
    assert_eq!(outcome, Some(AfterFailure::RetryAt(1_100)));
    assert!(
        jobs::claim(&mut conn, backend, "w1", 10_000, 1_099)
            .await
            .unwrap()
            .is_none(),
        "backing off"
    );
    let second = jobs::claim(&mut conn, backend, "w1", 10_000, 1_100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.attempts, 2);
    // The old token is fenced off.
    assert!(
        !jobs::complete(&mut conn, &second.id, &token, None, 1_200)
            .await
            .unwrap()
    );
    let token2 = second.lease_token.clone().unwrap();
    let outcome = jobs::fail(&mut conn, &second.id, &token2, "boom again", backoff, 1_300)
        .await
        .unwrap();
    assert_eq!(outcome, Some(AfterFailure::DeadLetter));
    let dead = jobs::get(&mut conn, &second.id).await.unwrap();
    assert_eq!(dead.state.as_str(), "dead");
    assert_eq!(dead.last_error.as_deref(), Some("boom again"));

    let counts = jobs::count_by_state(&mut conn).await.unwrap();
    assert_eq!(
        counts,
        vec![
            (JobState::Queued, 1),
            (JobState::Running, 0),
            (JobState::Done, 0),
            (JobState::Dead, 1)
        ]
    );

    jobs::retry_dead(&mut conn, &dead.id, 2_000).await.unwrap();
    let third = jobs::claim(&mut conn, backend, "w1", 10_000, 2_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((third.id.as_str(), third.attempts), (dead.id.as_str(), 1));
    assert!(
        jobs::complete(
            &mut conn,
            &third.id,
            third.lease_token.as_deref().unwrap(),
            Some("{\"ok\":true}"),
            2_100
        )
        .await
        .unwrap()
    );
    let finished = jobs::get(&mut conn, &third.id).await.unwrap();
    assert_eq!(
        (finished.state.as_str(), finished.result.as_deref()),
        ("done", Some("{\"ok\":true}"))
    );
    drop(conn);
    db.close().await;
    test_db.drop_database().await.unwrap();
}

#[tokio::test]
async fn expired_leases_are_reclaimed_or_dead_lettered() {
    let (test_db, db) = fresh().await;
    let backend = db.backend();
    let mut conn = db.pool().acquire().await.unwrap();
    let retried = jobs::enqueue(
        &mut conn,
        &NewJob::new("a", json!({}), 0).max_attempts(3),
        0,
    )
    .await
    .unwrap();
    let last_try = jobs::enqueue(
        &mut conn,
        &NewJob::new("b", json!({}), 0).max_attempts(1).run_at(1),
        0,
    )
    .await
    .unwrap();

    let a = jobs::claim(&mut conn, backend, "lost-worker", 1_000, 0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.id, retried.id());
    let b = jobs::claim(&mut conn, backend, "lost-worker", 1_000, 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.id, last_try.id());
    // Still leased at 500; the lease of `a` has run out at 2 000 and it is taken again.
    assert!(
        jobs::claim(&mut conn, backend, "w2", 1_000, 500)
            .await
            .unwrap()
            .is_none()
    );
    let again = jobs::claim(&mut conn, backend, "w2", 1_000, 2_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            again.id.as_str(),
            again.attempts,
            again.locked_by.as_deref()
        ),
        (a.id.as_str(), 2, Some("w2"))
    );
    // `b` had no attempt left: it is not claimed but dead-lettered by the reaper.
    assert!(
        jobs::claim(&mut conn, backend, "w2", 1_000, 2_000)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(jobs::reap_exhausted(&mut conn, 2_000).await.unwrap(), 1);
    assert_eq!(
        jobs::get(&mut conn, &b.id).await.unwrap().state.as_str(),
        "dead"
    );
    drop(conn);
    db.close().await;
    test_db.drop_database().await.unwrap();
}

#[tokio::test]
async fn messages_marked_sent_in_bulk_only_under_our_lease() {
    use ee_store::messages::{self, NewMessage, Sent};
    let (test_db, db) = fresh().await;
    let mut conn = db.pool().acquire().await.unwrap();
    let t = tenants::insert(
        &mut conn,
        tenants::NewTenant {
            name: "A",
            slug: "a",
            settings: "{}",
        },
        1,
    )
    .await
    .unwrap();
    for i in 0..3 {
        let new = NewMessage {
            id: ee_core::ids::new_id(),
            tenant_id: t.id.clone(),
            kind: ee_core::delivery::MessageKind::Transactional,
            to_email: format!("r{i}@a.test"),
            from_email: "f@a.test".into(),
            subject: "s".into(),
            headers: "{}".into(),
            message_id_header: format!("<{i}@a.test>"),
            state: "queued".into(),
            not_before: 1,
            ..Default::default()
        };
        messages::insert(&mut conn, &new, 1).await.unwrap();
    }
    let (lease, claimed) =
        message_leases::claim_due(&mut conn, db.backend(), "node", 10, 60_000, 2)
            .await
            .unwrap();
    assert_eq!(claimed.len(), 3);
    // Another node took the third one after our lease ran out.
    sqlx::query("UPDATE messages SET lease_token = 'theirs' WHERE id = $1")
        .bind(&claimed[2].id)
        .execute(&mut *conn)
        .await
        .unwrap();
    let sent: Vec<Sent<'_>> = claimed
        .iter()
        .map(|m| Sent {
            message: m,
            code: 250,
            reply: "2.0.0 Ok: queued as 'X'",
            ip_id: None,
            route: "relay:r".to_owned(),
            links: "[]",
            tls: Some("TLSv1_3 TLS13_AES_128_GCM_SHA256 verified"),
            mta_sts: None,
        })
        .collect();
    let marked = messages::finish_sent_many(&mut conn, &lease, &sent, 5)
        .await
        .unwrap();
    assert_eq!(marked, 2);
    for (i, m) in claimed.iter().enumerate() {
        let stored = messages::get(&mut conn, &m.id, Scope::All).await.unwrap();
        let events = messages::events(&mut conn, &m.id).await.unwrap();
        if i < 2 {
            assert_eq!(
                (
                    stored.state.as_str(),
                    stored.last_code,
                    stored.last_reply.as_deref(),
                    stored.sent_at,
                    stored.route.as_deref()
                ),
                (
                    "sent",
                    Some(250),
                    Some("2.0.0 Ok: queued as 'X'"),
                    Some(5),
                    Some("relay:r")
                )
            );
            assert_eq!(events.len(), 1, "{events:?}");
            assert_eq!(
                events[0].tls.as_deref(),
                Some("TLSv1_3 TLS13_AES_128_GCM_SHA256 verified")
            );
        } else {
            assert_eq!(stored.state.as_str(), "sending", "not ours: left alone");
            assert!(events.is_empty(), "{events:?}");
        }
    }
    drop(conn);
    db.close().await;
    test_db.drop_database().await.unwrap();
}

#[tokio::test]
async fn campaigns_due_together_take_turns_and_transactional_mail_does_not_wait() {
    use ee_store::messages::{self, NewMessage};
    let (test_db, db) = fresh().await;
    let mut conn = db.pool().acquire().await.unwrap();
    let t = tenants::insert(
        &mut conn,
        tenants::NewTenant {
            name: "A",
            slug: "a",
            settings: "{}",
        },
        1,
    )
    .await
    .unwrap();
    // Campaign A queued 30 messages first, campaign B 30 after, then one transactional.
    let mut n = 0;
    for (campaign, count, at) in [(Some("A"), 30, 1), (Some("B"), 30, 2), (None, 1, 3)] {
        for _ in 0..count {
            n += 1;
            let new = NewMessage {
                id: ee_core::ids::new_id(),
                tenant_id: t.id.clone(),
                campaign_id: campaign.map(str::to_owned),
                kind: if campaign.is_some() {
                    ee_core::delivery::MessageKind::Campaign
                } else {
                    ee_core::delivery::MessageKind::Transactional
                },
                to_email: format!("r{n}@a.test"),
                from_email: "f@a.test".into(),
                subject: "s".into(),
                headers: "{}".into(),
                message_id_header: format!("<{n}@a.test>"),
                state: "queued".into(),
                not_before: at,
                ..Default::default()
            };
            messages::insert(&mut conn, &new, at).await.unwrap();
        }
    }
    let (_, claimed) = message_leases::claim_due(&mut conn, db.backend(), "node", 21, 60_000, 10)
        .await
        .unwrap();
    let count = |c: Option<&str>| {
        claimed
            .iter()
            .filter(|m| m.campaign_id.as_deref() == c)
            .count()
    };
    assert_eq!(
        (count(Some("A")), count(Some("B")), count(None)),
        (10, 10, 1)
    );
    drop(conn);
    db.close().await;
    test_db.drop_database().await.unwrap();
}

#[tokio::test]
async fn an_old_database_is_migrated_and_a_newer_one_refused() {
    let test_db = TestDatabase::create().await.unwrap();
    let db = ee_store::Db::connect(&test_db.url, 4).await.unwrap();
    assert_eq!(db.schema_version().await.unwrap(), None);
    // The first released schema, with a tenant in it.
    db.migrate_to(1).await.unwrap();
    assert_eq!(db.schema_version().await.unwrap(), Some(1));
    sqlx::query(
        "INSERT INTO tenants (id, name, slug, settings, is_active, created_at, updated_at) \
         VALUES ('t1', 'Old', 'old', '{}', 1, 1, 1)",
    )
    .execute(db.pool())
    .await
    .unwrap();
    db.migrate().await.unwrap();
    assert_eq!(db.schema_version().await.unwrap(), Some(db.known_schema()));
    let mut conn = db.pool().acquire().await.unwrap();
    assert_eq!(tenants::get(&mut conn, "t1").await.unwrap().slug, "old");
    drop(conn);
    // A newer release's migration: this binary refuses the database, and says why.
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time) \
         VALUES (99999, 'from the future', CURRENT_TIMESTAMP, true, $1, 0)",
    )
    .bind(vec![0u8; 48])
    .execute(db.pool())
    .await
    .unwrap();
    let err = db.migrate().await.unwrap_err().to_string();
    assert!(
        err.contains("schema is version 99999, newer than this binary's"),
        "{err}"
    );
    db.close().await;
    test_db.drop_database().await.unwrap();
}

#[tokio::test]
async fn stored_states_read_typed_and_an_unknown_name_fails_the_read() {
    use ee_core::auth::{Actor, ActorKind};
    use ee_core::ip::IpState;
    use ee_store::ips;
    let (test_db, db) = fresh().await;
    let mut conn = db.pool().acquire().await.unwrap();
    let ip = ips::insert(
        &mut conn,
        ips::NewIp {
            tenant_id: None,
            ip_address: "192.0.2.7",
            hostname: None,
            pool: None,
            state: IpState::Warming,
        },
        1,
    )
    .await
    .unwrap();
    let read = ips::get(&mut conn, &ip.id, Scope::All).await.unwrap();
    assert_eq!(read.previous_state, None, "NULL reads as none");
    let actor = Actor {
        kind: ActorKind::System,
        id: None,
        label: None,
    };
    ips::record_transition(
        &mut conn,
        &read,
        IpState::Quarantined,
        Some("test"),
        &actor,
        2,
    )
    .await
    .unwrap();
    let read = ips::get(&mut conn, &ip.id, Scope::All).await.unwrap();
    assert_eq!(
        (read.state, read.previous_state),
        (IpState::Quarantined, Some(IpState::Warming))
    );
    let moves = ips::transitions(&mut conn, &ip.id).await.unwrap();
    assert_eq!(
        moves
            .iter()
            .map(|t| (t.from_state, t.to_state))
            .collect::<Vec<_>>(),
        [(IpState::Warming, IpState::Quarantined)]
    );
    // A name no state has is an error, in a nullable column as in the others.
    sqlx::query("UPDATE ips SET previous_state = 'asleep' WHERE id = $1")
        .bind(&ip.id)
        .execute(&mut *conn)
        .await
        .unwrap();
    let err = ips::get(&mut conn, &ip.id, Scope::All).await.unwrap_err();
    // (sqlx 0.9's derive loses the inner error's text: the column is what it names.)
    assert!(err.to_string().contains("column previous_state"), "{err}");
    drop(conn);
    db.close().await;
    test_db.drop_database().await.unwrap();
}
