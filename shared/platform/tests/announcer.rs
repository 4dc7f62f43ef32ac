//! `cache::Announcer` against a real server: what is announced reaches a listener,
//! keys announced together arrive together, and what is still queued when the last
//! clone is dropped or the service stops is sent before the task ends.

use std::time::Duration;

use distnet_platform::cache::{Announcer, EVERYTHING};
use distnet_platform::db;
use distnet_testkit::TestDb;
use sqlx::postgres::PgListener;
use tokio::sync::watch;

const CHANNEL: &str = "announcer_test";

/// A database of its own, a pool on it and a listener on [`CHANNEL`].
async fn listening() -> (TestDb, sqlx::PgPool, PgListener) {
    let db = TestDb::new().await.expect("database");
    let settings = distnet_testkit::settings(&db.url);
    let pool = db::pool(&settings.database, "announcer").expect("pool");
    let mut listener = PgListener::connect_with(&pool).await.expect("listener");
    listener.listen(CHANNEL).await.expect("listen");
    (db, pool, listener)
}

/// The keys of the next notification, sorted.
async fn next_keys(listener: &mut PgListener) -> Vec<String> {
    let notification = tokio::time::timeout(Duration::from_secs(30), listener.recv())
        .await
        .expect("a notification within 30 s")
        .expect("the listener's connection");
    let mut keys: Vec<String> = notification.payload().split(' ').map(str::to_string).collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn announced_keys_reach_listeners_and_the_last_are_sent_when_the_announcer_is_dropped() {
    let (_db, pool, mut listener) = listening().await;
    let (_stop, shutdown) = watch::channel(false);
    let (announcer, task) = Announcer::spawn(pool.clone(), CHANNEL, shutdown, Duration::from_secs(10));

    announcer.announce("customers/r-1".into());
    let first = next_keys(&mut listener).await;
    assert_eq!(first, ["customers/r-1"]);

    // Announced back to back: every key arrives, none twice, in one notification or
    // a few (the first may leave before the others are queued).
    for key in ["products/a", "customers/r-2", "products/a", "customers/r-3"] {
        announcer.announce(key.into());
    }
    let mut heard = Vec::new();
    while heard.len() < 3 {
        heard.extend(next_keys(&mut listener).await);
    }
    heard.sort();
    assert_eq!(heard, ["customers/r-2", "customers/r-3", "products/a"]);

    // Dropped right after announcing: the key is still sent, then the task ends.
    let clone = announcer.clone();
    drop(announcer);
    clone.announce("customers/r-4".into());
    drop(clone);
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the task ends once every clone is gone")
        .expect("the task did not panic");
    assert_eq!(next_keys(&mut listener).await, ["customers/r-4"]);
}

#[tokio::test]
async fn after_shutdown_it_announces_for_its_linger_then_stops() {
    let (_db, pool, mut listener) = listening().await;
    let (stop, shutdown) = watch::channel(false);
    let (announcer, task) = Announcer::spawn(pool.clone(), CHANNEL, shutdown, Duration::from_millis(500));
    stop.send(true).expect("shutdown");
    // A call still being drained commits and announces after the signal.
    tokio::time::sleep(Duration::from_millis(50)).await;
    announcer.announce("products/b".into());
    assert_eq!(next_keys(&mut listener).await, ["products/b"]);
    // The announcer is still held (as a drained server might), but it stops after its
    // linger all the same.
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the task ends after its linger")
        .expect("the task did not panic");
    // Announcing after the task ended is ignored, not a panic.
    announcer.announce(EVERYTHING.into());
}
