//! LogInteraction and ListInteractions; deliveries are logged from logistics' events
//! (`crate::events`).

use chrono::Duration;
use distnet_platform::ServiceError;
use distnet_platform::auth::{Caller, Role};
use std::sync::LazyLock;

use distnet_platform::idempotency;
use distnet_platform::pagination;
use distnet_platform::validate::{Violations, parse_name};
use distnet_proto::customers::v1::{
    Channel, Interaction, ListInteractionsRequest, ListInteractionsResponse, LogInteractionRequest,
    MaintenanceTask,
};

use super::CustomersApi;
use crate::domain::access;
use crate::domain::interactions;
use crate::store::{interactions as stored, time_of};

/// Roles that log contacts by hand: the staff who serve retailers.
pub const INTERACTION_LOGGERS: &[Role] = &[
    Role::Admin,
    Role::CustomerManager,
    Role::CallCenterAgent,
    Role::MarketInspector,
];
/// Roles that read contacts (a retailer only its own).
pub const INTERACTION_READERS: &[Role] = &[
    Role::Admin,
    Role::Service,
    Role::CustomerManager,
    Role::CallCenterAgent,
    Role::MarketInspector,
    Role::Retailer,
];

/// How far back a contact may be logged.
const BACKDATE_LIMIT_DAYS: i64 = 7;

impl CustomersApi {
    pub(super) async fn log_interaction(
        &self,
        caller: Caller,
        request: LogInteractionRequest,
    ) -> Result<Interaction, ServiceError> {
        caller.require(INTERACTION_LOGGERS)?;
        let now = self.clock.now();
        let mut v = Violations::new();
        v.request_id(&request.request_id);
        v.known_enum::<Channel>(request.channel, "channel");
        let channel = Channel::try_from(request.channel).unwrap_or(Channel::Unspecified);
        v.check(
            interactions::loggable(channel),
            "channel",
            "must be set and not DELIVERY (deliveries are logged from logistics)",
        );
        v.non_empty(&request.outcome, "outcome");
        v.text(&request.outcome, "outcome", 64);
        v.text(&request.notes, "notes", 2000);
        let visit = channel == Channel::Visit;
        match &request.check_in {
            Some(at) => {
                v.latitude(at.latitude, "check_in.latitude");
                v.longitude(at.longitude, "check_in.longitude");
            }
            None => v.check(!visit, "check_in", "is required for a visit"),
        }
        v.check(
            visit || request.tasks.is_empty(),
            "tasks",
            "terminal maintenance is done on visits only",
        );
        for (i, &task) in request.tasks.iter().enumerate() {
            v.check(
                MaintenanceTask::try_from(task).is_ok_and(|t| t != MaintenanceTask::Unspecified),
                &format!("tasks[{i}]"),
                "must be a known task",
            );
        }
        v.check(request.tasks.len() <= 6, "tasks", "at most the six tasks");
        let time = match &request.time {
            None => Some(now),
            Some(_) => time_of(&request.time),
        };
        match time {
            Some(t) => {
                v.check(
                    t <= now + Duration::minutes(5),
                    "time",
                    "must not be in the future",
                );
                v.check(
                    t >= now - Duration::days(BACKDATE_LIMIT_DAYS),
                    "time",
                    "must be within the last 7 days",
                );
            }
            None => v.add("time", "is not a valid timestamp"),
        }
        v.into_result()?;
        let time = time.unwrap_or(now);
        let customer_id = parse_name(&request.customer, "customers", "customer")?.to_string();

        let mut tx = self.pool.begin().await?;
        let request_key = (request.request_id.as_str(), "LogInteraction", &request);
        let (key, customer) =
            match super::claim_customer(&mut tx, &caller, request_key, &request.customer, &customer_id)
                .await?
            {
                Ok(fresh) => fresh,
                Err(replay) => return Ok(replay),
            };
        let check_in = match (&request.check_in, &customer.location) {
            (Some(at), Some(store)) => {
                let point = (at.latitude, at.longitude);
                let (distance, flagged) = interactions::check_in(
                    (store.latitude, store.longitude),
                    point,
                    self.settings.visit_radius_m,
                );
                Some((point, distance, flagged))
            }
            _ => None,
        };
        let mut tasks = request.tasks.clone();
        tasks.sort_unstable();
        tasks.dedup();
        let id = format!("ia-{}", uuid::Uuid::now_v7().simple());
        let new = stored::NewInteraction {
            id: &id,
            customer_id: &customer_id,
            area_id: &customer.area_id,
            channel: request.channel,
            actor: &caller.sub,
            actor_role: caller.role.as_str(),
            time,
            outcome: &request.outcome,
            notes: &request.notes,
            check_in,
            tasks: &tasks,
            order_id: "",
        };
        // The interaction and the stored response: one round trip.
        static LOG: LazyLock<String> =
            LazyLock::new(|| idempotency::IdempotencyKey::completing_statement(&stored::INSERT));
        let logged = new.to_wire();
        key.complete_with(&mut tx, &logged, &LOG, |query| stored::bind_insert(query, &new))
            .await?;
        tx.commit().await?;
        Ok(logged)
    }

    pub(super) async fn list_interactions(
        &self,
        caller: Caller,
        request: ListInteractionsRequest,
    ) -> Result<ListInteractionsResponse, ServiceError> {
        caller.require(INTERACTION_READERS)?;
        let mut v = Violations::new();
        v.check(request.page_size >= 0, "page_size", "must not be negative");
        v.known_enum::<Channel>(request.channel, "channel");
        v.text(&request.actor, "actor", 63);
        let from = time_of(&request.start_time);
        let to = time_of(&request.end_time);
        v.check(
            request.start_time.is_none() || from.is_some(),
            "start_time",
            "is not a valid timestamp",
        );
        v.check(
            request.end_time.is_none() || to.is_some(),
            "end_time",
            "is not a valid timestamp",
        );
        if let (Some(from), Some(to)) = (from, to) {
            v.check(from < to, "end_time", "must be after start_time");
        }
        v.into_result()?;
        let customer_id = if request.customer.is_empty() {
            String::new()
        } else {
            parse_name(&request.customer, "customers", "customer")?.to_string()
        };
        let fingerprint = format!(
            "interactions|{}|{}|{}|{:?}|{:?}",
            request.customer, request.actor, request.channel, from, to
        );
        let page = pagination::read(request.page_size, &request.page_token, &fingerprint)?;
        let filter = stored::InteractionFilter {
            customer_id,
            actor: request.actor.clone(),
            channel: request.channel,
            from,
            to,
        };
        let rows = stored::list(
            &self.pool,
            &filter,
            &access::visibility(&caller),
            &caller.sub,
            &page,
        )
        .await?;
        let (interactions, next_page_token) = pagination::finish(rows, &page, &fingerprint, |i| {
            let time = time_of(&i.time).map(|t| t.to_rfc3339()).unwrap_or_default();
            format!(
                "{time}|{}",
                i.name.strip_prefix("interactions/").unwrap_or(&i.name)
            )
        });
        Ok(ListInteractionsResponse {
            interactions,
            next_page_token,
        })
    }
}
