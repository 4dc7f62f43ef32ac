//! Seeds the customer relationship through the customers API, as its users would:
//! the previous system's order history (`ImportOrderHistory`), last week's visits by
//! each sampled retailer's own customer manager (one in 25 checked in 2 km away, so
//! flagged) and call-center calls, a satisfaction survey per sampled retailer, and
//! service cases in every state. Request ids are fixed, so a re-run changes nothing.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{Datelike as _, Utc};
use distnet_platform::auth::{Claims, Role, TokenIssuer};
use distnet_platform::cycle::CycleId;
use distnet_proto::common::v1::{LatLng, Money};
use distnet_proto::customers::v1::customer_service_client::CustomerServiceClient;
use distnet_proto::customers::v1::{
    CaseCategory, Channel, CloseCaseRequest, ImportOrderHistoryRequest, LogInteractionRequest,
    MaintenanceTask, OpenCaseRequest, OrderHistoryRecord, RecordCallbackRequest, RecordSurveyRequest,
    ResolveCaseRequest, SurveyResponse, TransferCaseRequest,
};
use futures::StreamExt as _;

use crate::demo::{BearerToken, bearer, connect, patiently, progress_bar};
use crate::seed::{NetworkShape, SAMPLE_EVERY, SeedRetailer, generate, weekly_history};

/// Calls in flight while seeding.
const CONCURRENCY: usize = 16;
/// History records per ImportOrderHistory call.
const IMPORT_BATCH: usize = 5_000;
/// Every `CASE_EVERY`-th retailer has a service case.
const CASE_EVERY: usize = 50;
/// The call-center agent who takes the demo's complaints.
const AGENT: &str = "cc-001";

pub struct RelationshipReport {
    pub history: usize,
    pub visits: usize,
    pub surveys: usize,
    pub cases: usize,
    pub elapsed: Duration,
}

/// How far a demo case has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CaseStage {
    Open,
    Transferred,
    Resolved,
    CalledBack,
    Closed,
    /// Called back unsatisfied: open again.
    Reopened,
}

const STAGES: [CaseStage; 6] = [
    CaseStage::Open,
    CaseStage::Transferred,
    CaseStage::Resolved,
    CaseStage::CalledBack,
    CaseStage::Closed,
    CaseStage::Reopened,
];

const CATEGORIES: [(CaseCategory, &str); 6] = [
    (CaseCategory::Delivery, "送货晚了两个小时，司机没有提前电话"),
    (CaseCategory::ProductQuality, "一条烟外包装破损"),
    (CaseCategory::SupplyShortage, "紧俏品规这周又没订到"),
    (CaseCategory::ServiceAttitude, "客户经理上门时间不固定"),
    (CaseCategory::Billing, "电子结算扣款金额与订单不符"),
    (CaseCategory::Other, "希望增加陈列道具"),
];

type Client = CustomerServiceClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, BearerToken>,
>;

fn cny(fen: i64) -> Option<Money> {
    Some(distnet_platform::wire::cny(fen))
}

/// Clients for the seed's admin, the call-center agent who takes complaints, each
/// area's agent who phones for orders, and every customer manager.
struct Callers {
    admin: Client,
    agent: Client,
    area_agents: HashMap<String, Client>,
    managers: HashMap<String, Client>,
}

impl Callers {
    fn new(channel: &tonic::transport::Channel, secret: &str, shape: &NetworkShape) -> anyhow::Result<Self> {
        let issuer = TokenIssuer::hs256(secret);
        let ttl = Duration::from_secs(3600);
        let client = |claims: Claims| -> anyhow::Result<Client> {
            Ok(CustomerServiceClient::with_interceptor(
                channel.clone(),
                bearer(&issuer.mint(&claims)?)?,
            ))
        };
        let managers = crate::seed::manager_ids(shape);
        let areas: Vec<String> = managers.iter().map(|(_, area)| area.clone()).collect();
        Ok(Self {
            admin: client(Claims::new(
                format!("distnet-seed-{}", shape.seed),
                Role::Admin,
                ttl,
            ))?,
            agent: client(Claims::new(AGENT, Role::CallCenterAgent, ttl).with_areas(areas.clone()))?,
            area_agents: areas
                .iter()
                .map(|area| {
                    let claims =
                        Claims::new(format!("cc-{area}"), Role::CallCenterAgent, ttl).with_areas([area]);
                    Ok((area.clone(), client(claims)?))
                })
                .collect::<anyhow::Result<_>>()?,
            managers: managers
                .into_iter()
                .map(|(id, area)| {
                    let claims = Claims::new(id.clone(), Role::CustomerManager, ttl).with_areas([area]);
                    Ok((id, client(claims)?))
                })
                .collect::<anyhow::Result<_>>()?,
        })
    }

    fn area_agent(&self, area: &str) -> anyhow::Result<Client> {
        self.area_agents
            .get(area)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no call-center agent for {area}"))
    }

    fn manager(&self, id: &str) -> anyhow::Result<Client> {
        self.managers
            .get(id)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no customer manager {id}"))
    }
}

/// Seeds order history for every retailer and contacts, surveys and cases for a
/// sample of them.
pub async fn seed_relationship(
    endpoint: &str,
    secret: &str,
    shape: &NetworkShape,
) -> anyhow::Result<RelationshipReport> {
    let started = Instant::now();
    let channel = connect(endpoint).await?;
    let callers = Callers::new(&channel, secret, shape)?;
    let retailers = generate(shape);
    let current = crate::demo_allocation::current_cycle();
    let history = import_history(&callers, shape, &retailers, current).await?;

    // Round robin over the customer managers, so that the calls in flight belong to
    // different people and each stays within the rate a phone is allowed.
    let mut sample: Vec<(usize, &SeedRetailer)> =
        retailers.iter().enumerate().step_by(SAMPLE_EVERY).collect();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut turn: HashMap<usize, usize> = HashMap::new();
    for (index, retailer) in &sample {
        let n = seen.entry(retailer.customer.owner_id.as_str()).or_default();
        turn.insert(*index, *n);
        *n += 1;
    }
    sample.sort_by_key(|(index, retailer)| (turn.get(index).copied(), retailer.customer.owner_id.clone()));
    let progress = progress_bar(sample.len(), "retailers' visits, calls, surveys and cases");
    progress.set_message("seeding relationships");
    let seed = shape.seed;
    let callers = &callers;
    let mut results = futures::stream::iter(sample)
        .map(|(index, retailer)| async move {
            let key = format!("seed-{seed}-{}", retailer.customer_id);
            let mut manager = callers.manager(&retailer.customer.owner_id)?;
            let mut caller = callers.area_agent(&retailer.customer.area_id)?;
            log_contacts(&mut manager, &mut caller, &key, index, retailer).await?;
            survey(&mut manager, &key, index, retailer).await?;
            let case = if index.is_multiple_of(CASE_EVERY) {
                let stage = STAGES[(index / CASE_EVERY) % STAGES.len()];
                service_case(callers, &mut manager, &key, index, retailer, stage).await?;
                1
            } else {
                0
            };
            anyhow::Ok(case)
        })
        .buffer_unordered(CONCURRENCY);
    let (mut sampled, mut cases) = (0, 0);
    while let Some(result) = results.next().await {
        cases += result?;
        sampled += 1;
        progress.inc(1);
    }
    progress.finish_and_clear();
    Ok(RelationshipReport {
        history,
        visits: sampled,
        surveys: sampled,
        cases,
        elapsed: started.elapsed(),
    })
}

async fn import_history(
    callers: &Callers,
    shape: &NetworkShape,
    retailers: &[SeedRetailer],
    current: CycleId,
) -> anyhow::Result<usize> {
    let history = weekly_history(shape, retailers, current);
    for (batch, chunk) in history.chunks(IMPORT_BATCH).enumerate() {
        callers
            .admin
            .clone()
            .import_order_history(ImportOrderHistoryRequest {
                request_id: format!("seed-{}-history-{current}-{batch}", shape.seed),
                records: chunk
                    .iter()
                    .map(|w| OrderHistoryRecord {
                        customer: format!("customers/{}", w.customer_id),
                        cycle: format!("cycles/{}", w.cycle),
                        orders: 1,
                        value: cny(w.value_fen),
                        cartons: w.cartons,
                        scarce_cartons: w.scarce_cartons,
                    })
                    .collect(),
            })
            .await
            .map_err(|s| anyhow::anyhow!("importing order history: {s:?}"))?;
    }
    Ok(history.len())
}

/// The owner's visit on the retailer's visit day of the past week (a day ago at the
/// latest), with display and shelf upkeep; every 25th checked in 2 km away. The call
/// center phones every other sampled retailer for its order.
async fn log_contacts(
    manager: &mut Client,
    agent: &mut Client,
    key: &str,
    index: usize,
    retailer: &SeedRetailer,
) -> anyhow::Result<()> {
    let customer = format!("customers/{}", retailer.customer_id);
    let now = Utc::now();
    let local = now + chrono::Duration::hours(8);
    let today = i64::from(local.weekday().number_from_monday());
    let days_back = (today - i64::from(retailer.customer.visit_weekday))
        .rem_euclid(7)
        .max(1);
    let location = retailer.customer.location.unwrap_or_default();
    let off_by_deg = if index.is_multiple_of(SAMPLE_EVERY * 25) {
        0.018
    } else {
        0.0002
    };
    let visit = LogInteractionRequest {
        request_id: format!("{key}-visit"),
        customer: customer.clone(),
        channel: Channel::Visit as i32,
        outcome: "ORDER_TAKEN".into(),
        notes: "陈列已更新，货架整理完毕".into(),
        check_in: Some(LatLng {
            latitude: location.latitude + off_by_deg,
            longitude: location.longitude,
        }),
        tasks: vec![
            MaintenanceTask::Display as i32,
            MaintenanceTask::ShelfTidying as i32,
        ],
        time: Some(distnet_platform::wire::timestamp(
            now - chrono::Duration::days(days_back) - chrono::Duration::hours(2),
        )),
    };
    patiently(|| {
        let (mut client, request) = (manager.clone(), visit.clone());
        async move { client.log_interaction(request).await }
    })
    .await
    .map_err(|s| anyhow::anyhow!("visiting {customer}: {s:?}"))?;
    if index.is_multiple_of(2 * SAMPLE_EVERY) {
        let call = LogInteractionRequest {
            request_id: format!("{key}-call"),
            customer: customer.clone(),
            channel: Channel::CallOut as i32,
            outcome: "ORDER_TAKEN".into(),
            notes: "电话订货".into(),
            time: Some(distnet_platform::wire::timestamp(now - chrono::Duration::days(1))),
            ..LogInteractionRequest::default()
        };
        patiently(|| {
            let (mut client, request) = (agent.clone(), call.clone());
            async move { client.log_interaction(request).await }
        })
        .await
        .map_err(|s| anyhow::anyhow!("calling {customer}: {s:?}"))?;
    }
    Ok(())
}

/// A questionnaire with answers spread deterministically over the scale, mostly
/// satisfied.
async fn survey(
    manager: &mut Client,
    key: &str,
    index: usize,
    retailer: &SeedRetailer,
) -> anyhow::Result<()> {
    const ANSWERS: [&str; 8] = [
        "very_satisfied",
        "satisfied",
        "satisfied",
        "very_satisfied",
        "neutral",
        "satisfied",
        "dissatisfied",
        "very_dissatisfied",
    ];
    let responses = ["delivery", "service", "supply", "complaints", "overall"]
        .iter()
        .enumerate()
        .map(|(q, question)| SurveyResponse {
            question_id: (*question).into(),
            answer_id: ANSWERS[(index / SAMPLE_EVERY + 3 * q) % ANSWERS.len()].into(),
            ..SurveyResponse::default()
        })
        .collect();
    let survey = RecordSurveyRequest {
        request_id: format!("{key}-survey"),
        customer: format!("customers/{}", retailer.customer_id),
        channel: Channel::Visit as i32,
        responses,
        comment: String::new(),
    };
    patiently(|| {
        let (mut client, request) = (manager.clone(), survey.clone());
        async move { client.record_survey(request).await }
    })
    .await
    .map_err(|s| anyhow::anyhow!("surveying {}: {s:?}", retailer.customer_id))?;
    Ok(())
}

/// A complaint taken by the call center and carried to `stage`: handed to the
/// retailer's customer manager, resolved by them, called back and closed by the agent
/// (its first-contact owner), or called back unsatisfied and so open again.
async fn service_case(
    callers: &Callers,
    manager: &mut Client,
    key: &str,
    index: usize,
    retailer: &SeedRetailer,
    stage: CaseStage,
) -> anyhow::Result<()> {
    let mut agent = callers.agent.clone();
    let (category, description) = CATEGORIES[(index / CASE_EVERY) % CATEGORIES.len()];
    let fail = |what: &'static str| {
        move |s: tonic::Status| anyhow::anyhow!("{what} for {}: {s:?}", retailer.customer_id)
    };
    let case = agent
        .open_case(OpenCaseRequest {
            request_id: format!("{key}-case"),
            customer: format!("customers/{}", retailer.customer_id),
            category: category as i32,
            channel: Channel::CallIn as i32,
            description: description.into(),
        })
        .await
        .map_err(fail("opening a case"))?
        .into_inner();
    if stage == CaseStage::Open {
        return Ok(());
    }
    agent
        .transfer_case(TransferCaseRequest {
            request_id: format!("{key}-case-transfer"),
            name: case.name.clone(),
            to_handler: retailer.customer.owner_id.clone(),
            reason: "客户经理上门处理".into(),
        })
        .await
        .map_err(fail("transferring the case"))?;
    if stage == CaseStage::Transferred {
        return Ok(());
    }
    manager
        .resolve_case(ResolveCaseRequest {
            request_id: format!("{key}-case-resolve"),
            name: case.name.clone(),
            resolution: "已上门核实并处理".into(),
        })
        .await
        .map_err(fail("resolving the case"))?;
    if stage == CaseStage::Resolved {
        return Ok(());
    }
    agent
        .record_callback(RecordCallbackRequest {
            request_id: format!("{key}-case-callback"),
            name: case.name.clone(),
            outcome: if stage == CaseStage::Reopened {
                "店主仍不满意".into()
            } else {
                "店主确认已解决".into()
            },
            satisfied: stage != CaseStage::Reopened,
        })
        .await
        .map_err(fail("calling back"))?;
    if stage == CaseStage::Closed {
        agent
            .close_case(CloseCaseRequest {
                request_id: format!("{key}-case-close"),
                name: case.name.clone(),
            })
            .await
            .map_err(fail("closing the case"))?;
    }
    Ok(())
}
