//! The README walkthrough against a real `distnet up --demo`: the built binary, its
//! printed ports and token, reflection, health, and a customer created and read back.

mod support;

use std::time::Duration;

use distnet_proto::accreditation::v1::accreditation_service_client::AccreditationServiceClient;
use distnet_proto::accreditation::v1::{
    CustomerClass, GetStandingRequest, LicenseStatus, ListStandingsRequest,
};
use distnet_proto::allocation::v1::allocation_service_client::AllocationServiceClient;
use distnet_proto::allocation::v1::{GetCycleReportRequest, GetEntitlementsRequest};
use distnet_proto::common::v1::LatLng;
use distnet_proto::customers::v1::customer_service_client::CustomerServiceClient;
use distnet_proto::customers::v1::{
    CaseStatus, CreateCustomerRequest, Customer, CustomerFormat, GetCustomerInsightsRequest,
    GetCustomerRequest, GetVisitComplianceRequest, ListCasesRequest, ListCustomersRequest, Settlement,
};
use distnet_proto::logistics::v1::logistics_service_client::LogisticsServiceClient;
use distnet_proto::logistics::v1::{ListVehiclesRequest, ListZonesRequest};
use distnet_testkit::{Bearer, TestDb};
use support::line_starting_with;
use tokio::io::{AsyncBufReadExt, BufReader};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

#[tokio::test(flavor = "multi_thread")]
async fn distnet_up_demo_serves_the_readme_walkthrough_11500_retailers_and_their_licenses() {
    let db = TestDb::new().await.expect("database");
    let mut child = support::distnet_up()
        .arg("--demo")
        .env("DATABASE_URL", &db.url)
        .env("DISTNET__SERVER__SHUTDOWN_GRACE_MS", "200")
        // The seed changes the insights' inputs in bursts; a run that saw only part of
        // them is followed by another after this spacing (60 s by default).
        .env("DISTNET__CUSTOMERS__INSIGHTS_REFRESH_MS", "1000")
        .spawn()
        .expect("distnet up starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();

    let addr = line_starting_with(&mut lines, "customers listening on").await;
    let accreditation_addr = line_starting_with(&mut lines, "accreditation listening on").await;
    let allocation_addr = line_starting_with(&mut lines, "allocation listening on").await;
    let logistics_addr = line_starting_with(&mut lines, "logistics listening on").await;
    let token = line_starting_with(&mut lines, "export TOKEN=").await;
    let network = line_starting_with(&mut lines, "demo delivery network ready:").await;
    assert!(network.starts_with("4 depots, 9 zones, 44 vehicles"), "{network}");
    let ready = line_starting_with(&mut lines, "demo network ready:").await;
    assert!(ready.starts_with("11500 retailers"), "{ready}");
    let licensing = line_starting_with(&mut lines, "demo licenses ready:").await;
    let licensed: usize = licensing
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a licensed count");
    // The layout rule refuses a few demo shops that stand within 50 m of another.
    assert!(licensed > 11_000, "{licensing}");
    let sample = line_starting_with(&mut lines, "demo score histories and credit files ready:").await;
    assert!(sample.starts_with("1150 and 1150"), "{sample}");
    let grading = line_starting_with(&mut lines, "demo grading published:").await;
    assert!(
        grading.starts_with(&format!("{licensed} retailers in 30 tiers")),
        "{grading}"
    );
    let allocation = line_starting_with(&mut lines, "demo allocation committed:").await;
    let cycle = allocation
        .strip_prefix("cycle ")
        .and_then(|rest| rest.split(',').next())
        .expect("a cycle")
        .to_string();
    assert!(allocation.contains("50 products (5 scarce)"), "{allocation}");
    let relationships = line_starting_with(&mut lines, "demo relationships ready:").await;
    // 1150 sampled retailers each get a visit and a survey; every 50th a case.
    assert!(
        relationships.contains("1150 visits, 1150 surveys, 230 cases"),
        "{relationships}"
    );

    let channel = distnet_testkit::channel(addr.parse().expect("address"))
        .await
        .expect("connect");

    // grpcurl -plaintext ADDR grpc.health.v1.Health/Check
    let health = HealthClient::new(channel.clone())
        .check(HealthCheckRequest::default())
        .await
        .expect("health")
        .into_inner();
    assert_eq!(health.status, 1, "SERVING");

    // ListCustomers with the printed token: every demo retailer is there.
    let token_copy = token.clone();
    let mut client = CustomerServiceClient::with_interceptor(channel.clone(), Bearer(Some(token)));
    let mut count = 0;
    let mut page_token = String::new();
    loop {
        let page = client
            .list_customers(ListCustomersRequest {
                page_size: 1000,
                page_token,
                ..Default::default()
            })
            .await
            .expect("list")
            .into_inner();
        count += page.customers.len();
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(count, 11_500);

    // Create and get a customer, as in the README.
    let created = client
        .create_customer(CreateCustomerRequest {
            request_id: "readme-1".into(),
            customer_id: "readme-shop".into(),
            customer: Some(Customer {
                display_name: "春熙路便利店".into(),
                format: CustomerFormat::ConvenienceStore as i32,
                area_id: "area-01".into(),
                owner_id: "cm-001".into(),
                location: Some(LatLng {
                    latitude: 30.657,
                    longitude: 104.081,
                }),
                settlement: Settlement::Cash as i32,
                ..Default::default()
            }),
        })
        .await
        .expect("create")
        .into_inner();
    let fetched = client
        .get_customer(GetCustomerRequest {
            name: "customers/readme-shop".into(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(fetched, created);

    // Every licensed demo retailer has a standing with an active license.
    let accreditation_channel = distnet_testkit::channel(accreditation_addr.parse().expect("address"))
        .await
        .expect("connect");
    let mut accreditation =
        AccreditationServiceClient::with_interceptor(accreditation_channel, Bearer(Some(token_copy.clone())));
    let mut active = 0;
    let mut page_token = String::new();
    loop {
        let page = accreditation
            .list_standings(ListStandingsRequest {
                page_size: 1000,
                page_token,
                license_status: LicenseStatus::Active as i32,
                ..Default::default()
            })
            .await
            .expect("standings")
            .into_inner();
        active += page.standings.len();
        assert!(
            page.standings.iter().all(|s| (1..=30).contains(&s.tier)),
            "every licensed retailer holds exactly one published tier"
        );
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(active, licensed);

    // The first retailer is in the scored and credit-filed sample.
    let standing = accreditation
        .get_standing(GetStandingRequest {
            customer: "customers/r-00001".into(),
        })
        .await
        .expect("standing")
        .into_inner();
    assert_ne!(
        standing.customer_class,
        CustomerClass::Unspecified as i32,
        "classified by its points"
    );
    assert!(!standing.credit_grade.is_empty(), "graded by its credit file");

    // The README's entitlement lookup: the committed cycle's five scarce products.
    let allocation_channel = distnet_testkit::channel(allocation_addr.parse().expect("address"))
        .await
        .expect("connect");
    let mut allocation_client =
        AllocationServiceClient::with_interceptor(allocation_channel, Bearer(Some(token_copy.clone())));
    let entitlements = allocation_client
        .get_entitlements(GetEntitlementsRequest {
            customer: "customers/r-00001".into(),
            cycle: format!("cycles/{cycle}"),
        })
        .await
        .expect("entitlements")
        .into_inner();
    assert_eq!(entitlements.entitlements.len(), 5, "{entitlements:?}");
    let report = allocation_client
        .get_cycle_report(GetCycleReportRequest {
            cycle: format!("cycles/{cycle}"),
            product: "products/zhonghua-hard".into(),
        })
        .await
        .expect("report")
        .into_inner();
    assert!(report.eligible > 10_000, "{report:?}");

    // The delivery network: the city DC's three zones on the 3-day cycle, its 32 vans.
    let logistics_channel = distnet_testkit::channel(logistics_addr.parse().expect("address"))
        .await
        .expect("connect");
    let mut logistics =
        LogisticsServiceClient::with_interceptor(logistics_channel, Bearer(Some(token_copy.clone())));
    let admin_token = token_copy;
    let zones = logistics
        .list_zones(ListZonesRequest {
            depot: "depots/chengdu".into(),
            page_size: 50,
            page_token: String::new(),
        })
        .await
        .expect("zones")
        .into_inner()
        .zones;
    assert_eq!(
        zones.iter().map(|z| z.cycle_day).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    let vans = logistics
        .list_vehicles(ListVehiclesRequest {
            depot: "depots/chengdu".into(),
            page_size: 100,
            page_token: String::new(),
        })
        .await
        .expect("vehicles")
        .into_inner()
        .vehicles;
    assert_eq!(vans.len(), 32);

    // The relationship: a rep's week, cases in every state, the four degrees.
    let customers_channel = distnet_testkit::channel(addr.parse().expect("address"))
        .await
        .expect("connect");
    let mut admin_customers =
        CustomerServiceClient::with_interceptor(customers_channel, Bearer(Some(admin_token)));
    let compliance = admin_customers
        .get_visit_compliance(GetVisitComplianceRequest {
            rep: "cm-001".into(),
            week: cycle.clone(),
        })
        .await
        .expect("compliance")
        .into_inner();
    assert!(compliance.planned > 100, "{compliance:?}");
    let mut states = std::collections::BTreeSet::new();
    let mut page_token = String::new();
    loop {
        let page = admin_customers
            .list_cases(ListCasesRequest {
                page_size: 100,
                page_token,
                ..Default::default()
            })
            .await
            .expect("cases")
            .into_inner();
        states.extend(page.cases.iter().map(|c| c.status));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(
        states.into_iter().collect::<Vec<_>>(),
        vec![
            CaseStatus::Open as i32,
            CaseStatus::Resolved as i32,
            CaseStatus::Closed as i32
        ]
    );
    // The seed imports the order history before it records the surveys, and a refresh
    // may run in between: wait for one that has seen both.
    let mut insights = None;
    for _ in 0..1200 {
        if let Ok(found) = admin_customers
            .get_customer_insights(GetCustomerInsightsRequest {
                customer: "customers/r-00001".into(),
            })
            .await
            && found.get_ref().cycles.iter().filter(|c| c.orders > 0).count() > 3
            && found
                .get_ref()
                .satisfaction
                .as_ref()
                .is_some_and(|s| s.factors.iter().any(|f| f.name == "surveys"))
        {
            insights = Some(found.into_inner());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let insights =
        insights.expect("r-00001's insights from its imported history and its survey within 120 s");
    assert_eq!(insights.cycles.len(), 12);
    assert_ne!(insights.segment, 0);

    // SIGTERM stops everything cleanly.
    support::terminate(&mut child).await;
}
