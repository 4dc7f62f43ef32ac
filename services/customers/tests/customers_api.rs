//! The customer profiles contract, through a real server and real Postgres.

mod support;

use std::collections::HashSet;

use distnet_platform::auth::Role;
use distnet_proto::customers::v1::{
    BatchGetCustomersRequest, Customer, GetCustomerRequest, ListCustomersRequest,
    ListOwnershipHistoryRequest, ReassignOwnerRequest, UpdateCustomerRequest,
};
use futures::StreamExt as _;
use support::{TestService, bad_fields, create_request, reason, retailer};
use tonic::Code;

fn get(name: &str) -> GetCustomerRequest {
    GetCustomerRequest { name: name.into() }
}

fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    })
}

#[tokio::test]
async fn create_get_update_list_round_trip() {
    let service = TestService::start().await;
    let mut admin = service.admin();

    let created = admin
        .create_customer(create_request(
            "req-1",
            "r-00001",
            retailer("福兴便利店", "area-01", "cm-001"),
        ))
        .await
        .expect("created")
        .into_inner();
    assert_eq!(created.name, "customers/r-00001");
    assert_eq!(created.owner_id, "cm-001");
    assert!(!created.etag.is_empty());
    assert!(created.create_time.is_some());

    let fetched = admin
        .get_customer(get(&created.name))
        .await
        .expect("got")
        .into_inner();
    assert_eq!(fetched, created);

    let patch = Customer {
        name: created.name.clone(),
        etag: created.etag.clone(),
        display_name: "福兴超市".into(),
        floor_area_sqm: 120,
        ..Customer::default()
    };
    let updated = admin
        .update_customer(UpdateCustomerRequest {
            request_id: "req-2".into(),
            customer: Some(patch),
            update_mask: mask(&["display_name", "floor_area_sqm"]),
        })
        .await
        .expect("updated")
        .into_inner();
    assert_eq!(updated.display_name, "福兴超市");
    assert_eq!(updated.floor_area_sqm, 120);
    assert_eq!(updated.legal_name, created.legal_name, "unmasked fields stay");
    assert_ne!(updated.etag, created.etag);

    let listed = admin
        .list_customers(ListCustomersRequest {
            name_prefix: "福兴".into(),
            ..Default::default()
        })
        .await
        .expect("listed")
        .into_inner();
    assert_eq!(listed.customers, vec![updated]);
    assert!(listed.next_page_token.is_empty());
    service.stop().await;
}

#[tokio::test]
async fn twenty_five_hundred_customers_page_through_completely_at_sizes_1_7_and_1000() {
    let service = TestService::start().await;
    let admin = service.admin();
    let created: Vec<String> = futures::stream::iter(0..2500)
        .map(|i| {
            let mut client = admin.clone();
            async move {
                let area = format!("area-{:02}", i % 20 + 1);
                client
                    .create_customer(create_request(
                        &format!("seed-{i}"),
                        &format!("r-{i:05}"),
                        retailer(&format!("店{i}"), &area, "cm-001"),
                    ))
                    .await
                    .expect("created")
                    .into_inner()
                    .name
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let expected: HashSet<String> = created.into_iter().collect();
    assert_eq!(expected.len(), 2500);

    for page_size in [1, 7, 1000] {
        let mut client = admin.clone();
        let mut seen = Vec::new();
        let mut token = String::new();
        loop {
            let page = client
                .list_customers(ListCustomersRequest {
                    page_size,
                    page_token: token.clone(),
                    ..Default::default()
                })
                .await
                .expect("page")
                .into_inner();
            assert!(page.customers.len() <= page_size as usize);
            seen.extend(page.customers.into_iter().map(|c| c.name));
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        let unique: HashSet<String> = seen.iter().cloned().collect();
        assert_eq!(seen.len(), 2500, "page size {page_size}: every customer once");
        assert_eq!(
            unique, expected,
            "page size {page_size}: no duplicates, none missing"
        );
        let mut sorted = seen.clone();
        sorted.sort();
        assert_eq!(seen, sorted, "stable id order");
    }
    service.stop().await;
}

#[tokio::test]
async fn a_retried_create_returns_the_same_customer_and_creates_one_row() {
    let service = TestService::start().await;
    let mut admin = service.admin();
    let request = create_request("phone-retry-1", "", retailer("老王烟酒店", "area-02", "cm-002"));
    let first = admin
        .create_customer(request.clone())
        .await
        .expect("first")
        .into_inner();
    let second = admin.create_customer(request).await.expect("retry").into_inner();
    assert_eq!(first, second);

    let all = admin
        .list_customers(ListCustomersRequest::default())
        .await
        .expect("list")
        .into_inner()
        .customers;
    assert_eq!(all.len(), 1, "one row for two attempts");

    // Concurrent duplicates too: one wins, the others replay it.
    let request = create_request("phone-retry-2", "", retailer("并发店", "area-02", "cm-002"));
    let results: Vec<_> = futures::future::join_all((0..8).map(|_| {
        let mut client = admin.clone();
        let request = request.clone();
        async move { client.create_customer(request).await }
    }))
    .await;
    let names: HashSet<String> = results
        .into_iter()
        .filter_map(|r| r.ok().map(|c| c.into_inner().name))
        .collect();
    assert_eq!(names.len(), 1, "all successful replies name the same customer");
    let count = admin
        .list_customers(ListCustomersRequest {
            name_prefix: "并发".into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .customers
        .len();
    assert_eq!(count, 1);
    service.stop().await;
}

#[tokio::test]
async fn the_same_request_id_for_a_different_request_is_invalid() {
    let service = TestService::start().await;
    let mut admin = service.admin();
    admin
        .create_customer(create_request("dup", "", retailer("甲", "area-01", "cm-001")))
        .await
        .expect("first");
    let error = admin
        .create_customer(create_request("dup", "", retailer("乙", "area-01", "cm-001")))
        .await
        .expect_err("reused id");
    assert_eq!(error.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&error), vec!["request_id".to_string()]);
    service.stop().await;
}

/// Request ids are remembered for `retention.idempotency_days`: inside the window a
/// reused id is recognised, after it the background sweep has forgotten it and the id
/// is a new request.
#[tokio::test]
async fn a_request_id_is_forgotten_after_its_retention_window() {
    let db = TestService::database().await;
    let mut settings = distnet_testkit::settings(&db.url);
    settings.retention.sweep_ms = 1_000;
    let service = TestService::start_with(&settings).await;
    let mut admin = service.admin();
    admin
        .create_customer(create_request("r-kept", "", retailer("甲", "area-01", "cm-001")))
        .await
        .expect("first");
    let reused = admin
        .create_customer(create_request("r-kept", "", retailer("乙", "area-01", "cm-001")))
        .await
        .expect_err("remembered");
    assert_eq!(bad_fields(&reused), vec!["request_id".to_string()]);

    // 31 days later (the default window is 30).
    let pool = distnet_platform::db::pool(&settings.database, "customers").expect("pool");
    sqlx::query("UPDATE idempotency_keys SET created_at = created_at - interval '31 days' WHERE request_id = 'r-kept'")
        .execute(&pool)
        .await
        .expect("aged");
    distnet_testkit::eventually("the request id swept", || {
        let pool = pool.clone();
        async move {
            let left: i64 =
                sqlx::query_scalar("SELECT count(*) FROM idempotency_keys WHERE request_id = 'r-kept'")
                    .fetch_one(&pool)
                    .await
                    .ok()?;
            (left == 0).then_some(())
        }
    })
    .await;
    let again = admin
        .create_customer(create_request("r-kept", "", retailer("乙", "area-01", "cm-001")))
        .await
        .expect("a new request")
        .into_inner();
    assert_eq!(again.display_name, "乙");
    pool.close().await;
    service.stop().await;
    drop(db);
}

#[tokio::test]
async fn a_stale_etag_is_aborted() {
    let service = TestService::start().await;
    let mut admin = service.admin();
    let created = admin
        .create_customer(create_request("c", "r-1", retailer("甲", "area-01", "cm-001")))
        .await
        .expect("created")
        .into_inner();
    let update = |request_id: &str, name: &str| UpdateCustomerRequest {
        request_id: request_id.into(),
        customer: Some(Customer {
            name: created.name.clone(),
            etag: created.etag.clone(),
            display_name: name.into(),
            ..Customer::default()
        }),
        update_mask: mask(&["display_name"]),
    };
    admin
        .update_customer(update("u1", "乙"))
        .await
        .expect("first update");
    let error = admin
        .update_customer(update("u2", "丙"))
        .await
        .expect_err("stale");
    assert_eq!(error.code(), Code::Aborted);
    assert_eq!(reason(&error), "ETAG_MISMATCH");
    let now = admin
        .get_customer(get(&created.name))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(now.display_name, "乙", "the stale write changed nothing");
    service.stop().await;
}

#[tokio::test]
async fn no_token_is_unauthenticated_and_a_bad_token_too() {
    let service = TestService::start().await;
    let error = service
        .client(None)
        .get_customer(get("customers/r-1"))
        .await
        .expect_err("no token");
    assert_eq!(error.code(), Code::Unauthenticated);
    let error = service
        .client(Some("not.a.token".into()))
        .get_customer(get("customers/r-1"))
        .await
        .expect_err("garbage token");
    assert_eq!(error.code(), Code::Unauthenticated);
    service.stop().await;
}

#[tokio::test]
async fn a_customer_manager_sees_only_their_own_and_their_areas_customers() {
    let service = TestService::start().await;
    let mut admin = service.admin();
    for (id, area, owner) in [
        ("r-1", "area-01", "cm-1"),
        ("r-2", "area-02", "cm-2"),
        ("r-3", "area-03", "cm-1"),
    ] {
        admin
            .create_customer(create_request(id, id, retailer(id, area, owner)))
            .await
            .expect("created");
    }
    let mut cm1 = service.as_role(Role::CustomerManager, "cm-1", &["area-01"]);
    let error = cm1
        .get_customer(get("customers/r-2"))
        .await
        .expect_err("other area");
    assert!(matches!(error.code(), Code::NotFound | Code::PermissionDenied));
    cm1.get_customer(get("customers/r-3"))
        .await
        .expect("owned, outside areas");

    let visible: Vec<String> = cm1
        .list_customers(ListCustomersRequest::default())
        .await
        .expect("list")
        .into_inner()
        .customers
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(visible, vec!["customers/r-1", "customers/r-3"]);

    let error = cm1
        .batch_get_customers(BatchGetCustomersRequest {
            names: vec!["customers/r-1".into(), "customers/r-2".into()],
        })
        .await
        .expect_err("one out of scope");
    assert_eq!(error.code(), Code::NotFound);

    // Editing another area's customer is refused, and so is moving one there.
    let error = cm1
        .update_customer(UpdateCustomerRequest {
            request_id: "cm-move".into(),
            customer: Some(Customer {
                name: "customers/r-1".into(),
                area_id: "area-02".into(),
                ..Customer::default()
            }),
            update_mask: mask(&["area_id"]),
        })
        .await
        .expect_err("not their area");
    assert_eq!(error.code(), Code::PermissionDenied);

    // A driver has no business with profiles.
    let error = service
        .as_role(Role::Driver, "d-1", &["area-01"])
        .get_customer(get("customers/r-1"))
        .await
        .expect_err("driver");
    assert!(matches!(error.code(), Code::NotFound | Code::PermissionDenied));
    service.stop().await;
}

#[tokio::test]
async fn contact_phones_are_masked_for_roles_without_the_right() {
    let service = TestService::start().await;
    service
        .admin()
        .create_customer(create_request("c", "r-1", retailer("甲", "area-01", "cm-1")))
        .await
        .expect("created");
    let seen_by = |role, sub: &'static str| {
        let mut client = service.as_role(role, sub, &["area-01"]);
        async move {
            client
                .get_customer(get("customers/r-1"))
                .await
                .expect("readable")
                .into_inner()
                .contact_phone
        }
    };
    assert_eq!(seen_by(Role::CallCenterAgent, "cc-1").await, "13812345678");
    assert_eq!(seen_by(Role::MarketInspector, "mi-1").await, "138****5678");
    assert_eq!(seen_by(Role::AllocationPlanner, "ap-1").await, "138****5678");
    // Listed and batch-read the same way, the profile being cached by now.
    for (role, sub, phone) in [
        (Role::MarketInspector, "mi-1", "138****5678"),
        (Role::CallCenterAgent, "cc-1", "13812345678"),
    ] {
        let mut client = service.as_role(role, sub, &["area-01"]);
        let page = client
            .list_customers(ListCustomersRequest {
                page_size: 10,
                ..Default::default()
            })
            .await
            .expect("listed")
            .into_inner();
        let phones: Vec<&str> = page.customers.iter().map(|c| c.contact_phone.as_str()).collect();
        assert_eq!(phones, [phone], "{role:?}");
        let batch = client
            .batch_get_customers(BatchGetCustomersRequest {
                names: vec!["customers/r-1".into()],
            })
            .await
            .expect("batch read")
            .into_inner();
        assert_eq!(batch.customers[0].contact_phone, phone, "{role:?}");
    }
    service.stop().await;
}

#[tokio::test]
async fn bad_input_is_invalid_argument_listing_the_offending_fields() {
    let service = TestService::start().await;
    let mut admin = service.admin();
    let mut customer = retailer("", "Area 1", "cm-1");
    customer.format = 42;
    customer.location = Some(distnet_proto::common::v1::LatLng {
        latitude: 123.0,
        longitude: 0.0,
    });
    let error = admin
        .create_customer(create_request("", "R_1", customer))
        .await
        .expect_err("invalid");
    assert_eq!(error.code(), Code::InvalidArgument);
    let fields = bad_fields(&error);
    for expected in [
        "request_id",
        "customer_id",
        "customer.display_name",
        "customer.format",
        "customer.area_id",
        "customer.location.latitude",
    ] {
        assert!(
            fields.iter().any(|f| f == expected),
            "{expected} missing from {fields:?}"
        );
    }

    let error = admin
        .list_customers(ListCustomersRequest {
            page_size: -1,
            status: 77,
            ..Default::default()
        })
        .await
        .expect_err("invalid list");
    assert_eq!(error.code(), Code::InvalidArgument);
    let fields = bad_fields(&error);
    assert!(fields.contains(&"page_size".to_string()) && fields.contains(&"status".to_string()));

    let error = admin.get_customer(get("shops/1")).await.expect_err("bad name");
    assert_eq!(bad_fields(&error), vec!["name".to_string()]);
    service.stop().await;
}

#[tokio::test]
async fn a_page_token_reused_with_other_filters_is_invalid() {
    let service = TestService::start().await;
    let mut admin = service.admin();
    for i in 0..3 {
        admin
            .create_customer(create_request(
                &format!("c{i}"),
                &format!("r-{i}"),
                retailer("甲", "area-01", "cm-1"),
            ))
            .await
            .expect("created");
    }
    let first = admin
        .list_customers(ListCustomersRequest {
            page_size: 1,
            area_id: "area-01".into(),
            ..Default::default()
        })
        .await
        .expect("page")
        .into_inner();
    let error = admin
        .list_customers(ListCustomersRequest {
            page_size: 1,
            area_id: "area-02".into(),
            page_token: first.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .expect_err("token for other filters");
    assert_eq!(bad_fields(&error), vec!["page_token".to_string()]);

    // The same token with its last key forged into something no list issues (tokens
    // are not signed): refused, whatever its size.
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut token: serde_json::Value =
        serde_json::from_slice(&engine.decode(&first.next_page_token).expect("base64")).expect("json");
    for forged in ["r-0\u{1f}x".to_string(), "r".repeat(100_000)] {
        token["k"] = serde_json::Value::String(forged);
        let error = admin
            .list_customers(ListCustomersRequest {
                page_size: 1,
                area_id: "area-01".into(),
                page_token: engine.encode(token.to_string()),
                ..Default::default()
            })
            .await
            .expect_err("a forged key");
        assert_eq!(bad_fields(&error), vec!["page_token".to_string()]);
    }
    service.stop().await;
}

#[tokio::test]
async fn reassigning_the_owner_keeps_exactly_one_owner_and_the_history() {
    let service = TestService::start().await;
    let mut admin = service.admin();
    let created = admin
        .create_customer(create_request("c", "r-1", retailer("甲", "area-01", "cm-1")))
        .await
        .expect("created")
        .into_inner();
    let reassign = ReassignOwnerRequest {
        request_id: "move-1".into(),
        name: created.name.clone(),
        new_owner_id: "cm-2".into(),
        reason: "territory rebalanced".into(),
        etag: created.etag.clone(),
    };
    let moved = admin
        .reassign_owner(reassign.clone())
        .await
        .expect("moved")
        .into_inner();
    assert_eq!(moved.owner_id, "cm-2");
    let replay = admin
        .reassign_owner(reassign)
        .await
        .expect("retry replays")
        .into_inner();
    assert_eq!(replay, moved);

    let history = admin
        .list_ownership_history(ListOwnershipHistoryRequest {
            name: created.name.clone(),
        })
        .await
        .expect("history")
        .into_inner()
        .ownerships;
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].owner_id, "cm-1");
    assert!(history[0].end_time.is_some());
    assert_eq!(history[1].owner_id, "cm-2");
    assert!(history[1].end_time.is_none(), "exactly one current owner");
    assert_eq!(history[1].reason, "territory rebalanced");

    // Only admins reassign.
    let error = service
        .as_role(Role::CustomerManager, "cm-2", &["area-01"])
        .reassign_owner(ReassignOwnerRequest {
            request_id: "grab".into(),
            name: created.name,
            new_owner_id: "cm-3".into(),
            reason: "mine".into(),
            etag: String::new(),
        })
        .await
        .expect_err("not admin");
    assert_eq!(error.code(), Code::PermissionDenied);
    service.stop().await;
}
