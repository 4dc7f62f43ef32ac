//! Retention of the platform tables against a real schema: what is swept, and what
//! must never be (an event a subscriber has not received, anything inside its window).

use distnet_platform::db;
use distnet_platform::retention;
use distnet_platform::settings::RetentionSettings;
use distnet_testkit::TestDb;
use sqlx::PgPool;

async fn schema_pool(db: &TestDb) -> PgPool {
    let settings = distnet_testkit::settings(&db.url);
    let pool = db::pool(&settings.database, "svc").expect("pool");
    db::migrate(
        &pool,
        "svc",
        &sqlx::migrate::Migrator::DEFAULT,
        &settings.database,
    )
    .await
    .expect("migrations run");
    pool
}

/// An event `age_days` old; `pending` names the subscribers still to receive it.
async fn event(pool: &PgPool, label: &str, age_days: i32, pending: &[&str]) -> i64 {
    sqlx::query_scalar(
        "WITH e AS (
             INSERT INTO outbox (event_id, event_type, aggregate, envelope, created_at)
             VALUES (gen_random_uuid(), 'CustomerChanged', $1, '\\x00', now() - make_interval(days => $2))
             RETURNING id
         ), p AS (
             INSERT INTO outbox_pending (subscriber, outbox_id) SELECT s, e.id FROM unnest($3::text[]) AS s, e
         )
         SELECT id FROM e",
    )
    .bind(label)
    .bind(age_days)
    .bind(pending)
    .fetch_one(pool)
    .await
    .expect("event inserted")
}

async fn events(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT aggregate FROM outbox ORDER BY id")
        .fetch_all(pool)
        .await
        .expect("outbox read")
}

async fn consumed(pool: &PgPool, age_days: i32) {
    sqlx::query(
        "INSERT INTO inbox (event_id, event_type, source, processed_at)
         VALUES (gen_random_uuid(), 'OrderConfirmed', 'allocation', now() - make_interval(days => $1))",
    )
    .bind(age_days)
    .execute(pool)
    .await
    .expect("inbox row");
}

async fn request(pool: &PgPool, request_id: &str, age_days: i32) {
    sqlx::query(
        "INSERT INTO idempotency_keys (caller, request_id, method, request_hash, response, created_at)
         VALUES ('call_center/cc-1', $1, 'PlaceOrder', '\\x01', '\\x02', now() - make_interval(days => $2))",
    )
    .bind(request_id)
    .bind(age_days)
    .execute(pool)
    .await
    .expect("idempotency row");
}

async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(pool)
        .await
        .expect("count")
}

#[tokio::test]
async fn delivered_events_go_after_their_window_and_undelivered_ones_stay() {
    let db = TestDb::new().await.expect("test database");
    let pool = schema_pool(&db).await;
    let settings = RetentionSettings::default();
    event(&pool, "old-delivered", 10, &[]).await;
    let stuck = event(&pool, "old-pending", 10, &["logistics"]).await;
    event(&pool, "old-after-pending", 9, &[]).await;
    event(&pool, "recent", 1, &[]).await;

    assert_eq!(retention::sweep(&pool, &settings).await.expect("sweep"), 1);
    // Nothing at or after an event a subscriber still waits for goes, however old.
    assert_eq!(
        events(&pool).await,
        ["old-pending", "old-after-pending", "recent"]
    );

    sqlx::query("DELETE FROM outbox_pending WHERE outbox_id = $1")
        .bind(stuck)
        .execute(&pool)
        .await
        .expect("delivered");
    assert_eq!(retention::sweep(&pool, &settings).await.expect("sweep"), 2);
    assert_eq!(events(&pool).await, ["recent"]);
    assert_eq!(retention::sweep(&pool, &settings).await.expect("sweep"), 0);
}

#[tokio::test]
async fn consumed_ids_and_remembered_requests_go_in_batches_after_their_window() {
    let db = TestDb::new().await.expect("test database");
    let pool = schema_pool(&db).await;
    for age in [31, 35, 40, 45, 50] {
        consumed(&pool, age).await;
    }
    consumed(&pool, 29).await;
    for (id, age) in [("r-old-1", 31), ("r-old-2", 60), ("r-old-3", 90), ("r-new", 2)] {
        request(&pool, id, age).await;
    }
    // Two rows per statement: the sweep goes on until a statement finds fewer.
    let settings = RetentionSettings {
        batch: 2,
        ..RetentionSettings::default()
    };
    assert_eq!(retention::sweep(&pool, &settings).await.expect("sweep"), 8);
    assert_eq!(count(&pool, "inbox").await, 1);
    let left: Vec<String> = sqlx::query_scalar("SELECT request_id FROM idempotency_keys")
        .fetch_all(&pool)
        .await
        .expect("read");
    assert_eq!(left, ["r-new"]);
}

#[tokio::test]
async fn zero_days_keeps_a_table_for_ever() {
    let db = TestDb::new().await.expect("test database");
    let pool = schema_pool(&db).await;
    event(&pool, "old-delivered", 400, &[]).await;
    consumed(&pool, 400).await;
    request(&pool, "r-old", 400).await;
    let keep_all = RetentionSettings {
        outbox_days: 0,
        inbox_days: 0,
        idempotency_days: 0,
        ..RetentionSettings::default()
    };
    assert_eq!(retention::sweep(&pool, &keep_all).await.expect("sweep"), 0);
    for table in ["outbox", "inbox", "idempotency_keys"] {
        assert_eq!(count(&pool, table).await, 1, "{table}");
    }
}
