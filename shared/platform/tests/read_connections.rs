//! `db::ReadConnections` against a real server: released connections serve the next
//! read, unreleased ones are closed, at most `capacity` are open, and one whose
//! backend went away while it idled is replaced.

use std::time::Duration;

use distnet_platform::db::{self, ReadConnections};
use distnet_testkit::TestDb;
use sqlx::PgPool;

/// A database of its own, a pool on it, and `capacity` read connections beside it.
async fn reads(capacity: usize) -> (TestDb, PgPool, ReadConnections) {
    let db = TestDb::new().await.expect("database");
    let settings = distnet_testkit::settings(&db.url);
    let pool = db::pool(&settings.database, "reads").expect("pool");
    let reads = ReadConnections::new(pool.clone(), capacity);
    (db, pool, reads)
}

async fn backend(conn: &mut sqlx::PgConnection) -> i32 {
    sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(conn)
        .await
        .expect("a read")
}

async fn alive(pool: &PgPool, pid: i32) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)")
        .bind(pid)
        .fetch_one(pool)
        .await
        .expect("pg_stat_activity")
}

#[tokio::test]
async fn a_released_connection_serves_the_next_read_and_an_unreleased_one_is_closed() {
    let (_db, pool, reads) = reads(4).await;

    let mut conn = reads.acquire().await.expect("a connection");
    let first = backend(&mut conn).await;
    conn.release();
    assert_eq!(reads.idle(), 1);
    let mut conn = reads.acquire().await.expect("a connection");
    assert_eq!(backend(&mut conn).await, first, "the released connection again");
    assert_eq!(reads.idle(), 0);

    // Dropped without release (as on an error or a cancelled call): closed, not kept.
    drop(conn);
    assert_eq!(reads.idle(), 0);
    distnet_testkit::eventually("the unreleased connection closed", || async {
        (!alive(&pool, first).await).then_some(())
    })
    .await;
    let mut conn = reads.acquire().await.expect("a connection");
    assert_ne!(backend(&mut conn).await, first);
    conn.release();
}

#[tokio::test]
async fn at_most_capacity_connections_are_open_and_a_read_beyond_waits_for_one() {
    let (_db, _pool, reads) = reads(2).await;
    let mut first = reads.acquire().await.expect("a connection");
    let mut second = reads.acquire().await.expect("a connection");
    let pids = [backend(&mut first).await, backend(&mut second).await];
    // Both in use: a third read waits rather than opening a third connection.
    let waited = tokio::time::timeout(Duration::from_millis(300), reads.acquire()).await;
    assert!(waited.is_err(), "a third connection while two are in use");
    let (waiting, _) = tokio::join!(reads.acquire(), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        second.release();
    });
    let mut third = waiting.expect("the released connection");
    assert_eq!(backend(&mut third).await, pids[1]);
    third.release();
    first.release();
    assert_eq!(reads.idle(), 2);
}

#[tokio::test]
async fn a_kept_connection_whose_backend_went_away_is_replaced() {
    let (_db, pool, reads) = reads(2).await;
    let mut conn = reads.acquire().await.expect("a connection");
    let gone = backend(&mut conn).await;
    conn.release();
    let terminated: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(gone)
        .fetch_one(&pool)
        .await
        .expect("terminated");
    assert!(terminated);
    // Idle past the recheck: pinged before use, found dead, replaced.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let mut conn = reads.acquire().await.expect("a live connection");
    let pid = backend(&mut conn).await;
    assert_ne!(pid, gone);
    conn.release();
    assert_eq!(reads.idle(), 1);
}
