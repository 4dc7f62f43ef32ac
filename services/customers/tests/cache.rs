//! The profile cache behind `GetCustomer` / `BatchGetCustomers`, through two real
//! replicas on one database: a cached profile is served without the database, a
//! change made on one replica is read back at once there and soon on the other
//! (`NOTIFY`), a change made straight in the database is seen too, and a listener
//! that lost its connection never serves what it may have missed. A list page takes
//! its profiles from the cache too, but only at the versions the page listed; and the
//! pages themselves are cached per caller's visibility, emptied by every change or
//! addition on every replica.

mod support;

use std::time::Duration;

use distnet_platform::auth::Role;
use distnet_proto::customers::v1::{
    BatchGetCustomersRequest, Customer, GetCustomerRequest, ListCustomersRequest, ReassignOwnerRequest,
    UpdateCustomerRequest,
};
use sqlx::Connection as _;
use support::{Client, TestService, create_request, retailer};
use tonic::Code;

async fn name_of(client: &mut Client, id: &str) -> String {
    client
        .get_customer(GetCustomerRequest {
            name: format!("customers/{id}"),
        })
        .await
        .expect("read")
        .into_inner()
        .display_name
}

/// Ends every replica's `LISTEN` connection and waits until they are gone (they
/// reconnect after at least 100 ms): the notification of a change made right after
/// reaches nobody.
async fn lose_listeners(conn: &mut sqlx::PgConnection) {
    let listeners: Vec<i32> = sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_all(&mut *conn)
    .await
    .expect("listeners");
    assert!(listeners.len() >= 2, "each replica listens: {listeners:?}");
    sqlx::query("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid")
        .bind(&listeners)
        .execute(&mut *conn)
        .await
        .expect("terminate listeners");
    for _ in 0..100 {
        let alive: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)")
            .bind(&listeners)
            .fetch_one(&mut *conn)
            .await
            .expect("activity");
        if alive == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Renames `id` at a new version without a notification until a page of area-01 on
/// both `clients` still shows what it showed before: both serve that page from memory
/// (read afresh, it would list the new version, which no cache holds). The name it
/// was given last.
async fn until_pages_from_memory(
    clients: [&mut Client; 2],
    quiet: &mut sqlx::PgConnection,
    id: &str,
    name: &str,
) -> String {
    let [a, b] = clients;
    for round in 0..100 {
        let before = (listed_names(a).await, listed_names(b).await);
        let unheard_name = format!("{name}-{round}");
        sqlx::query("UPDATE customers.customers SET display_name = $1, version = version + 1 WHERE id = $2")
            .bind(&unheard_name)
            .bind(id)
            .execute(&mut *quiet)
            .await
            .expect("unheard rename");
        if (listed_names(a).await, listed_names(b).await) == before {
            return unheard_name;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("both replicas came to serve area-01's page from memory");
}

/// Polls `read` for up to 10 s until it gives `expected`.
async fn until_reads(client: &mut Client, id: &str, expected: &str) {
    for _ in 0..200 {
        if name_of(client, id).await == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{id} never read as {expected}");
}

/// Two replicas on one fresh database (the first holds it), its url, and r-1 (甲) and
/// r-2 (乙) of cm-1 in area-01 created through the first; r-1 as created.
async fn two_replicas_two_retailers(request_timeout_ms: u64) -> (TestService, TestService, String, Customer) {
    let db = TestService::database().await;
    let mut settings = distnet_testkit::settings(&db.url);
    settings.server.request_timeout_ms = request_timeout_ms;
    let url = db.url.clone();
    let mut a = TestService::start_with(&settings).await;
    a.db = Some(db);
    let b = TestService::start_with(&settings).await;
    let mut on_a = a.admin();
    let mut created = Vec::new();
    for (i, name) in [(1, "甲"), (2, "乙")] {
        let customer = on_a
            .create_customer(create_request(
                &format!("cache-{i}"),
                &format!("r-{i}"),
                retailer(name, "area-01", "cm-1"),
            ))
            .await
            .expect("created")
            .into_inner();
        created.push(customer);
    }
    (a, b, url, created.swap_remove(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_serve_cached_profiles_and_every_change_reaches_both() {
    let (a, b, url, created) = two_replicas_two_retailers(1_000).await;
    let (mut on_a, mut on_b) = (a.admin(), b.admin());
    // Both replicas have read r-1 (the listener may still be connecting: read until
    // a read has come from a live cache, shown below by the locked table).
    assert_eq!(name_of(&mut on_a, "r-1").await, "甲");
    assert_eq!(name_of(&mut on_b, "r-1").await, "甲");

    // With the table locked by someone else, r-1 still reads from each replica's
    // cache; r-2, never read, waits for the database until its deadline.
    let mut blocker = sqlx::PgConnection::connect(&url).await.expect("connect");
    let mut warm = false;
    for _ in 0..100 {
        name_of(&mut on_a, "r-1").await;
        name_of(&mut on_b, "r-1").await;
        sqlx::query("BEGIN").execute(&mut blocker).await.expect("begin");
        sqlx::query("LOCK TABLE customers.customers IN ACCESS EXCLUSIVE MODE")
            .execute(&mut blocker)
            .await
            .expect("lock");
        let cached = |client: &Client| {
            let mut client = client.clone();
            async move {
                client
                    .get_customer(GetCustomerRequest {
                        name: "customers/r-1".into(),
                    })
                    .await
            }
        };
        let (from_a, from_b) = (cached(&on_a).await, cached(&on_b).await);
        if from_a.is_ok() && from_b.is_ok() {
            let uncached = on_a
                .get_customer(GetCustomerRequest {
                    name: "customers/r-2".into(),
                })
                .await
                .expect_err("r-2 needs the locked table");
            assert_eq!(uncached.code(), Code::DeadlineExceeded);
            let batch = on_b
                .batch_get_customers(BatchGetCustomersRequest {
                    names: vec!["customers/r-1".into()],
                })
                .await
                .expect("a batch of cached profiles needs no database");
            assert_eq!(batch.into_inner().customers[0].display_name, "甲");
            warm = true;
        }
        sqlx::query("ROLLBACK")
            .execute(&mut blocker)
            .await
            .expect("unlock");
        if warm {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(warm, "both replicas came to serve r-1 from their caches");

    // A change on A: A reads it back at once, B as soon as the notification lands.
    let updated = on_a
        .update_customer(UpdateCustomerRequest {
            request_id: "cache-u1".into(),
            customer: Some(Customer {
                name: created.name.clone(),
                etag: created.etag.clone(),
                display_name: "甲二".into(),
                ..Customer::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["display_name".into()],
            }),
        })
        .await
        .expect("updated")
        .into_inner();
    assert_eq!(name_of(&mut on_a, "r-1").await, "甲二", "read your own write");
    until_reads(&mut on_b, "r-1", "甲二").await;

    // A change on B reaches A.
    let moved = on_b
        .reassign_owner(ReassignOwnerRequest {
            request_id: "cache-move".into(),
            name: created.name.clone(),
            new_owner_id: "cm-2".into(),
            reason: "territory rebalanced".into(),
            etag: updated.etag.clone(),
        })
        .await
        .expect("reassigned")
        .into_inner();
    assert_eq!(moved.owner_id, "cm-2");
    for _ in 0..200 {
        let owner = on_a
            .get_customer(GetCustomerRequest {
                name: "customers/r-1".into(),
            })
            .await
            .expect("read")
            .into_inner()
            .owner_id;
        if owner == "cm-2" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        on_a.get_customer(GetCustomerRequest {
            name: "customers/r-1".into()
        })
        .await
        .expect("read")
        .into_inner()
        .owner_id,
        "cm-2"
    );

    // A change straight in the database (an operator's fix) reaches both.
    sqlx::query(
        "UPDATE customers.customers SET display_name = '甲三', version = version + 1 WHERE id = 'r-1'",
    )
    .execute(&mut blocker)
    .await
    .expect("direct update");
    until_reads(&mut on_a, "r-1", "甲三").await;
    until_reads(&mut on_b, "r-1", "甲三").await;

    // The listeners lose their connections, and a change lands meanwhile: neither
    // replica serves what it may have missed.
    lose_listeners(&mut blocker).await;
    sqlx::query(
        "UPDATE customers.customers SET display_name = '甲四', version = version + 1 WHERE id = 'r-1'",
    )
    .execute(&mut blocker)
    .await
    .expect("direct update");
    until_reads(&mut on_a, "r-1", "甲四").await;
    until_reads(&mut on_b, "r-1", "甲四").await;

    b.stop().await;
    a.stop().await;
}

/// The display names of area-01's first page, by id.
/// A connection whose changes fire no trigger, so no replica hears of them.
async fn unheard(url: &str) -> sqlx::PgConnection {
    let mut quiet = sqlx::PgConnection::connect(url).await.expect("connect");
    sqlx::query("SET session_replication_role = replica")
        .execute(&mut quiet)
        .await
        .expect("no triggers");
    quiet
}

/// Polls area-01's first page on `client` for up to 10 s until its names are `expected`.
async fn until_lists(client: &mut Client, expected: &[&str]) {
    let mut names = Vec::new();
    for _ in 0..200 {
        names = listed_names(client)
            .await
            .into_iter()
            .map(|(_, n)| n)
            .collect::<Vec<_>>();
        if names == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("area-01 never listed as {expected:?}: {names:?}");
}

async fn listed_names(client: &mut Client) -> Vec<(String, String)> {
    listed_names_of(client, "area-01").await
}

async fn listed_names_of(client: &mut Client, area: &str) -> Vec<(String, String)> {
    client
        .list_customers(ListCustomersRequest {
            area_id: area.into(),
            page_size: 10,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .customers
        .into_iter()
        .map(|c| (c.name, c.display_name))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_page_takes_cached_profiles_only_at_the_versions_it_listed() {
    // Pages read afresh every time: what is checked here is the profile cache.
    let db = TestService::database().await;
    let mut settings = distnet_testkit::settings(&db.url);
    settings.customers.page_cache_entries = 0;
    let url = db.url.clone();
    let mut service = TestService::start_with(&settings).await;
    service.db = Some(db);
    let mut client = service.admin();
    for (i, name) in ["甲", "乙", "丙"].into_iter().enumerate() {
        client
            .create_customer(create_request(
                &format!("list-{i}"),
                &format!("r-{i}"),
                retailer(name, "area-01", "cm-1"),
            ))
            .await
            .expect("created");
    }
    // Changes made from this connection fire no trigger, so no replica hears of them:
    // what a page shows then tells where it came from.
    let mut quiet = unheard(&url).await;

    // Rename r-1 unheard, at the same version, until a page shows the name it had
    // before: that page took r-1 from the cache (the listener may still be
    // connecting at first, and a page then reads everything from the database).
    let mut from_cache = false;
    for round in 0..100 {
        let before = listed_names(&mut client).await;
        assert_eq!(before.len(), 3, "{before:?}");
        sqlx::query("UPDATE customers.customers SET display_name = $1 WHERE id = 'r-1'")
            .bind(format!("乙-{round}"))
            .execute(&mut quiet)
            .await
            .expect("rename");
        let after = listed_names(&mut client).await;
        if after == before {
            from_cache = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(from_cache, "a page came to take its profiles from the cache");

    // A new version, still unheard: the very next page shows it, because the cached
    // profile is not at the version the page listed. The others stay as they were.
    sqlx::query(
        "UPDATE customers.customers SET display_name = '乙新', version = version + 1 WHERE id = 'r-1'",
    )
    .execute(&mut quiet)
    .await
    .expect("new version");
    let (ids, names): (Vec<String>, Vec<String>) = listed_names(&mut client).await.into_iter().unzip();
    assert_eq!(names, ["甲", "乙新", "丙"]);
    // And that page, r-1 read from the database and the others from the cache, is in
    // id order.
    assert_eq!(ids, ["customers/r-0", "customers/r-1", "customers/r-2"]);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_are_cached_per_caller_and_every_change_empties_them_on_both_replicas() {
    let (a, b, url, first) = two_replicas_two_retailers(10_000).await;
    let (mut on_a, mut on_b) = (a.admin(), b.admin());
    until_lists(&mut on_b, &["甲", "乙"]).await;

    // r-2 renamed at a new version, unheard: a page that still shows the old name
    // came from the page cache (read afresh, it would list the new version, which no
    // cache holds). Each replica comes to serve its page so once its listener is live.
    let mut quiet = unheard(&url).await;
    let unheard_name = until_pages_from_memory([&mut on_a, &mut on_b], &mut quiet, "r-2", "乙").await;

    // The cached page is the admin's: an agent of area-02 and a manager of nobody's
    // area are shown nothing of it (each profile is checked against the caller too).
    let mut agent = a.as_role(Role::CallCenterAgent, "agent-2", &["area-02"]);
    assert_eq!(listed_names(&mut agent).await, []);
    let mut stranger = a.as_role(Role::CustomerManager, "cm-9", &[]);
    assert_eq!(listed_names(&mut stranger).await, []);
    // Pages are kept per caller: a page no one has listed yet, first by the stranger
    // (nothing), then by the owner of both (both, not the stranger's empty page).
    let mut owner = a.as_role(Role::CustomerManager, "cm-1", &[]);
    for (client, expected) in [(&mut stranger, 0), (&mut owner, 2)] {
        let page = client
            .list_customers(ListCustomersRequest {
                area_id: "area-01".into(),
                page_size: 5,
                ..Default::default()
            })
            .await
            .expect("list")
            .into_inner();
        assert_eq!(page.customers.len(), expected);
    }

    // A profile added on A: A lists it at once, B as soon as the notification lands,
    // and both pages are read again (r-2's unheard name shows with them).
    on_a.create_customer(create_request(
        "pages-3",
        "r-3",
        retailer("丙", "area-01", "cm-1"),
    ))
    .await
    .expect("created");
    let now_on_a: Vec<String> = listed_names(&mut on_a)
        .await
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    assert_eq!(now_on_a.len(), 3, "read your own addition: {now_on_a:?}");
    assert_eq!(now_on_a[1], unheard_name, "the page was read again");
    assert_eq!(now_on_a[2], "丙");
    until_lists(&mut on_b, &[now_on_a[0].as_str(), now_on_a[1].as_str(), "丙"]).await;
    let renamed = now_on_a[1].clone();

    // A change on B: B lists it at once, A soon.
    on_b.update_customer(UpdateCustomerRequest {
        request_id: "pages-u0".into(),
        customer: Some(Customer {
            name: first.name.clone(),
            etag: first.etag.clone(),
            display_name: "甲二".into(),
            ..Customer::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["display_name".into()],
        }),
    })
    .await
    .expect("updated");
    let expected = ["甲二", renamed.as_str(), "丙"];
    let now_on_b: Vec<String> = listed_names(&mut on_b)
        .await
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    assert_eq!(now_on_b, expected, "read your own write");
    until_lists(&mut on_a, &expected).await;

    // A move straight in the database (heard): r-1 leaves area-01's page on both, and
    // joins area-02's.
    sqlx::query("UPDATE customers.customers SET area_id = 'area-02', version = version + 1 WHERE id = 'r-1'")
        .execute(&mut sqlx::PgConnection::connect(&url).await.expect("connect"))
        .await
        .expect("direct move");
    until_lists(&mut on_a, &[renamed.as_str(), "丙"]).await;
    until_lists(&mut on_b, &[renamed.as_str(), "丙"]).await;
    let in_area_02 = listed_names_of(&mut agent, "area-02").await;
    assert_eq!(in_area_02, [("customers/r-1".to_string(), "甲二".to_string())]);

    // The listeners lose their connections and a change lands meanwhile: neither
    // replica serves a page from before it.
    let mut direct = sqlx::PgConnection::connect(&url).await.expect("connect");
    lose_listeners(&mut direct).await;
    sqlx::query(
        "UPDATE customers.customers SET display_name = '丙二', version = version + 1 WHERE id = 'r-3'",
    )
    .execute(&mut direct)
    .await
    .expect("direct rename");
    until_lists(&mut on_a, &[renamed.as_str(), "丙二"]).await;
    until_lists(&mut on_b, &[renamed.as_str(), "丙二"]).await;

    // Listening again and serving pages from memory, both replicas see a TRUNCATE.
    until_pages_from_memory([&mut on_a, &mut on_b], &mut quiet, "r-3", "丙").await;
    sqlx::query("TRUNCATE customers.customers CASCADE")
        .execute(&mut direct)
        .await
        .expect("truncate");
    until_lists(&mut on_a, &[]).await;
    until_lists(&mut on_b, &[]).await;

    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_reads_the_profiles_into_memory_before_it_reports_ready() {
    const API: &str = "distnet.customers.v1.CustomerService";
    let (a, b, url, _) = two_replicas_two_retailers(1_000).await;
    b.stop().await;
    let c = TestService::start_with(&distnet_testkit::settings(&url)).await;
    let channel = c.channel.clone();
    distnet_testkit::eventually("ready once read", || {
        let channel = channel.clone();
        async move { distnet_testkit::serving(&channel, API).await.ok()?.then_some(()) }
    })
    .await;
    // Changed without notifying anyone: a replica reading on demand would see it.
    let mut quiet = unheard(&url).await;
    sqlx::query("UPDATE customers.customers SET display_name = display_name || '改'")
        .execute(&mut quiet)
        .await
        .expect("quietly renamed");
    let mut on_c = c.admin();
    assert_eq!(name_of(&mut on_c, "r-1").await, "甲", "from memory");
    assert_eq!(name_of(&mut on_c, "r-2").await, "乙", "from memory");
    c.stop().await;
    a.stop().await;
}
