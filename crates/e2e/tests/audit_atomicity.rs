//! An ingest batch (API or webhook) is one audited change: its audit entry, its kept answer
//! and its contacts commit together or not at all. The failure is a real one, put in by a
//! database trigger that refuses one address.
#![allow(clippy::unwrap_used)]

mod common;

use common::TestApp;
use ee_store::Backend;
use reqwest::StatusCode;
use serde_json::json;

/// Makes the database refuse inserts into `table` of rows where `condition` holds
/// (written with `NEW.`), until `allow_again`.
async fn refuse(app: &TestApp, table: &str, condition: &str) {
    let pool = app.db.pool();
    let statements = match app.db.backend() {
        Backend::Sqlite => vec![format!(
            "CREATE TRIGGER ee_test_refuse_{table} BEFORE INSERT ON {table} \
             WHEN {condition} BEGIN SELECT RAISE(ABORT, 'refused by test'); END"
        )],
        Backend::Postgres => vec![
            format!(
                "CREATE OR REPLACE FUNCTION ee_test_refuse_{table}() RETURNS trigger AS $$ BEGIN \
                 IF {condition} THEN RAISE EXCEPTION 'refused by test'; END IF; \
                 RETURN NEW; END $$ LANGUAGE plpgsql"
            ),
            format!(
                "CREATE TRIGGER ee_test_refuse_{table} BEFORE INSERT ON {table} \
                 FOR EACH ROW EXECUTE FUNCTION ee_test_refuse_{table}()"
            ),
        ],
    };
    for sql in statements {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(pool)
            .await
            .unwrap();
    }
}

async fn allow_again(app: &TestApp, table: &str) {
    let sql = match app.db.backend() {
        Backend::Sqlite => format!("DROP TRIGGER ee_test_refuse_{table}"),
        Backend::Postgres => format!("DROP TRIGGER ee_test_refuse_{table} ON {table}"),
    };
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(app.db.pool())
        .await
        .unwrap();
}

async fn count(app: &TestApp, sql: &'static str, tenant: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .bind(tenant)
        .fetch_one(app.db.pool())
        .await
        .unwrap()
}

async fn contacts_of(app: &TestApp, tenant: &str) -> i64 {
    count(
        app,
        "SELECT COUNT(*) FROM contacts WHERE tenant_id = $1",
        tenant,
    )
    .await
}

/// Answers kept for replays of batch ids.
async fn kept_answers(app: &TestApp, tenant: &str) -> i64 {
    count(
        app,
        "SELECT COUNT(*) FROM ingest_batches WHERE tenant_id = $1",
        tenant,
    )
    .await
}

async fn ingest_audits(app: &TestApp, tenant: &str) -> i64 {
    count(
        app,
        "SELECT COUNT(*) FROM audit_logs WHERE action = 'contacts.ingest' AND tenant_id = $1",
        tenant,
    )
    .await
}

#[tokio::test]
async fn a_failed_batch_leaves_no_audit_row_and_a_committed_one_exactly_one() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brand").await;
    let (_, key) = app.api_key(&tenant, "scraper").await;
    let batch = json!({"source_id": "scraper-pro-001", "batch_id": "b-1", "contacts": [
        {"email": "first@ok.test"},
        {"email": "second@fail.test"},
    ]});

    // The change fails: nothing of the batch remains, its audit entry neither.
    refuse(&app, "contacts", "NEW.email LIKE '%@fail.test'").await;
    let failed = app
        .post("/api/v2/contacts/ingest", &key, batch.clone())
        .await;
    assert!(
        failed.status.is_server_error(),
        "the database refused the batch: {} {}",
        failed.status,
        failed.body
    );
    assert_eq!(ingest_audits(&app, &tenant).await, 0, "no audit row");
    assert_eq!(
        contacts_of(&app, &tenant).await,
        0,
        "no contact of the batch"
    );
    assert_eq!(
        kept_answers(&app, &tenant).await,
        0,
        "no kept answer: the batch id is still free"
    );

    allow_again(&app, "contacts").await;

    // The audit entry fails: the change is not kept without it.
    refuse(&app, "audit_logs", "NEW.action = 'contacts.ingest'").await;
    let unaudited = app
        .post("/api/v2/contacts/ingest", &key, batch.clone())
        .await;
    assert!(
        unaudited.status.is_server_error(),
        "{} {}",
        unaudited.status,
        unaudited.body
    );
    assert_eq!(
        contacts_of(&app, &tenant).await,
        0,
        "no contact kept without its audit entry"
    );
    assert_eq!(kept_answers(&app, &tenant).await, 0);
    allow_again(&app, "audit_logs").await;

    let done = app
        .post("/api/v2/contacts/ingest", &key, batch.clone())
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(
        done.headers.get("x-idempotent-replay").is_none(),
        "the failed try kept nothing to replay"
    );
    assert_eq!(done.body["counts"]["created"], 2, "{}", done.body);
    assert_eq!(
        ingest_audits(&app, &tenant).await,
        1,
        "exactly one audit row"
    );

    let replay = app.post("/api/v2/contacts/ingest", &key, batch).await;
    assert_eq!(replay.status, StatusCode::OK);
    assert_eq!(
        replay.headers.get("x-idempotent-replay").unwrap(),
        "true",
        "{}",
        replay.body
    );
    assert_eq!(replay.body["counts"], done.body["counts"]);
    assert_eq!(
        ingest_audits(&app, &tenant).await,
        1,
        "a replay changes nothing"
    );

    // The audit row is the batch's: who, which batch, which source, what it came to.
    let (actor, resource, changes): (String, String, String) = sqlx::query_as(
        "SELECT actor_type, resource_id, changes FROM audit_logs \
         WHERE action = 'contacts.ingest' AND tenant_id = $1",
    )
    .bind(&tenant)
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    assert_eq!(actor, "api_key");
    assert_eq!(resource, "b-1");
    let changes: serde_json::Value = serde_json::from_str(&changes).unwrap();
    assert_eq!(changes["after"]["source"], "scraper-pro-001");
    assert_eq!(changes["after"]["counts"]["created"], 2);
    app.finish().await;
}
