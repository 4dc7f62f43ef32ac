//! `distnet.customers.v1.CustomerService`: validate → authorize → store → reply.

mod access_rules;
mod cases;
mod insights;
mod interactions;
mod surveys;
mod visits;
mod wire;

pub use access_rules::ACCESS;
pub use cases::{CASE_HANDLERS, CASE_OPENERS, CASE_READERS, CASE_STATS_READERS, escalate_overdue};
pub use insights::{HISTORY_IMPORTERS, INSIGHT_READERS, Pace, cycle_monday, refresh_insights};
pub use interactions::{INTERACTION_LOGGERS, INTERACTION_READERS};
pub use surveys::SURVEY_RECORDERS;
pub use visits::VISIT_READERS;
pub use wire::{Profile, ProfileReads};

use std::sync::Arc;

use distnet_platform::ServiceError;
use distnet_platform::auth::{self, Caller};
use distnet_platform::cache::{self, Cache, Follower};
use distnet_platform::clock::SharedClock;
use distnet_platform::db::ReadConnections;
use distnet_platform::events::Outbox;
use distnet_platform::idempotency::{self, Claim};
use distnet_platform::pagination;
use distnet_platform::rpc;
use distnet_platform::settings::CustomersSettings;
use distnet_platform::validate::{Violations, is_valid_id, parse_name};
use distnet_proto::customers::v1::customer_service_server::CustomerService;
use distnet_proto::customers::v1::{
    BatchGetCustomersRequest, BatchGetCustomersResponse, Case, CaseStats, CloseCaseRequest,
    CreateCustomerRequest, Customer, CustomerFlag, CustomerFormat, CustomerInsights, CustomerStatus,
    GetCaseRequest, GetCaseStatsRequest, GetCustomerInsightsRequest, GetCustomerRequest,
    GetVisitComplianceRequest, GetVisitPlanRequest, ImportOrderHistoryRequest, ImportOrderHistoryResponse,
    Interaction, ListCasesRequest, ListCasesResponse, ListCustomersRequest, ListCustomersResponse,
    ListInteractionsRequest, ListInteractionsResponse, ListOwnershipHistoryRequest,
    ListOwnershipHistoryResponse, LogInteractionRequest, OpenCaseRequest, ReassignOwnerRequest,
    RecordCallbackRequest, RecordSurveyRequest, ResolveCaseRequest, Segment, Survey, TransferCaseRequest,
    UpdateCustomerRequest, VisitCompliance, VisitPlan,
};
use distnet_proto::events::v1::CustomerChanged;
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::domain::access::{self, Holder};
use crate::domain::profile;
use crate::store;
use wire::{Shown, ShownPage};

/// Error domain of this service.
pub const DOMAIN: &str = "customers.distnet";

/// At most this many names in one BatchGetCustomers.
const MAX_BATCH: usize = 1000;

/// What `ListCustomers` read for one caller's page: its ids and versions in id order
/// (the profiles come from the profile cache at those versions), and the token of the
/// next page. Ids rather than profiles, so that a cached page costs tens of bytes a
/// row and keeps no profile alive that the profile cache let go.
#[derive(Debug)]
struct ListedPage {
    ids: Vec<(String, i64)>,
    next_page_token: String,
}

/// Larger pages are read every time: the page cache's bound counts pages, so each must
/// stay small.
const MAX_CACHED_PAGE: i64 = pagination::DEFAULT_PAGE_SIZE;

/// The service's read-through caches; both follow the `customers` table's
/// notifications (see [`Caches::followers`]).
pub struct Caches {
    profiles: Arc<Cache<Arc<Profile>>>,
    pages: Arc<Cache<Arc<ListedPage>>>,
}

impl Caches {
    pub fn new(settings: &CustomersSettings) -> Self {
        Self {
            profiles: Cache::new(settings.cache_entries),
            pages: Cache::derived(settings.page_cache_entries),
        }
    }

    /// For [`distnet_platform::cache::listen`].
    pub fn followers(&self) -> Vec<Arc<dyn Follower>> {
        vec![self.profiles.clone(), self.pages.clone()]
    }

    /// After committing a change of profile `id` (`None`: a profile added): what this
    /// replica holds of it is gone before the caller hears of the change (the others
    /// follow the notification).
    fn changed(&self, id: Option<&str>) {
        if let Some(id) = id {
            self.profiles.evict(id);
        }
        self.pages.clear();
    }
}

pub struct CustomersApi {
    pool: PgPool,
    outbox: Outbox,
    clock: SharedClock,
    settings: CustomersSettings,
    /// Profiles by id (`customers.cache_entries`), evicted on every committed change,
    /// and `ListCustomers` pages (`customers.page_cache_entries`), emptied by every
    /// change.
    caches: Caches,
    /// Connections for `ListCustomers`' page reads, given back without the pool's ping.
    reads: ReadConnections,
}

impl CustomersApi {
    pub fn new(
        pool: PgPool,
        outbox: Outbox,
        clock: SharedClock,
        settings: CustomersSettings,
        caches: Caches,
        read_connections: usize,
    ) -> Self {
        Self {
            reads: ReadConnections::new(pool.clone(), read_connections),
            pool,
            outbox,
            clock,
            settings,
            caches,
        }
    }

    /// The profile with `id`: from the cache, or read and then cached.
    async fn profile(&self, id: &str) -> Result<Option<Arc<Profile>>, ServiceError> {
        Ok(self.profiles(&[(id, None)]).await?.pop())
    }

    /// Before the replica reports ready (health NOT_SERVING for its API until then):
    /// reads up to `customers.cache_entries` profiles into memory, [`MAX_BATCH`] to a
    /// read, so that the first calls after a start or a rollout are served from
    /// memory; at most [`cache::WARM_UP_LIMIT`].
    pub async fn warm_up(&self) {
        // A failure is logged; profiles are then read on demand.
        let _ = cache::warm_up("profiles", self.warm_profiles()).await;
    }

    /// See [`CustomersApi::warm_up`]: how many profiles were read.
    async fn warm_profiles(&self) -> Result<usize, ServiceError> {
        let profiles = &self.caches.profiles;
        if !profiles.caches() {
            return Ok(0);
        }
        profiles.until_live().await;
        let ids = store::ids(&self.pool, self.settings.cache_entries).await?;
        for batch in ids.chunks(MAX_BATCH) {
            let wanted: Vec<(&str, Option<i64>)> = batch.iter().map(|id| (id.as_str(), None)).collect();
            self.profiles(&wanted).await?;
        }
        Ok(ids.len())
    }

    /// The profiles of `wanted` (id, and the version the caller saw when it has one),
    /// in that order, leaving out ids that are not customers: from the cache where it
    /// holds them (at that version), the rest in one read, then cached.
    async fn profiles(&self, wanted: &[(&str, Option<i64>)]) -> Result<Vec<Arc<Profile>>, ServiceError> {
        let mut slots = Vec::with_capacity(wanted.len());
        let mut missing = Vec::new();
        for &(id, version) in wanted {
            let cached = self
                .caches
                .profiles
                .get(id)
                .filter(|p| version.is_none_or(|v| profile::is_etag_of(&p.customer().etag, v)));
            if cached.is_none() {
                missing.push(id.to_string());
            }
            slots.push(cached);
        }
        if !missing.is_empty() {
            let ticket = self.caches.profiles.ticket();
            let mut read: std::collections::HashMap<String, Arc<Profile>> =
                store::get_many(&self.pool, &missing)
                    .await?
                    .into_iter()
                    .map(|c| (profile::id_of(&c).to_string(), Arc::new(Profile::new(c))))
                    .collect();
            for (id, profile) in &read {
                self.caches.profiles.put(ticket, id, profile.clone());
            }
            for (&(id, _), slot) in wanted.iter().zip(slots.iter_mut()) {
                if slot.is_none() {
                    *slot = read.remove(id);
                }
            }
        }
        Ok(slots.into_iter().flatten().collect())
    }
}

fn holder(customer: &Customer) -> Holder<'_> {
    Holder {
        customer_id: customer.name.strip_prefix("customers/").unwrap_or(&customer.name),
        owner_id: &customer.owner_id,
        area_id: &customer.area_id,
    }
}

/// A change about one customer begins: the request's idempotency claim and the
/// customer `name` (id `id`) read and locked in `tx`, in one round trip.
/// `Ok(Ok((key, customer)))` to do the work when `caller` may read the customer,
/// `Ok(Err(response))` to replay a stored response; `NOT_FOUND` when the customer is
/// not there or out of scope, so that existence does not leak.
async fn claim_customer<R: prost::Message + Default>(
    tx: &mut sqlx::PgConnection,
    caller: &Caller,
    (request_id, method, request): (&str, &'static str, &impl prost::Message),
    name: &str,
    id: &str,
) -> Result<Result<(idempotency::IdempotencyKey, Customer), R>, ServiceError> {
    static CLAIM_READING: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| idempotency::claim_statement(&store::LOCKED_FOR_CLAIM));
    let bind_id = id.to_string();
    match idempotency::begin_reading(tx, caller, request_id, method, request, &CLAIM_READING, |query| {
        query.bind(bind_id)
    })
    .await?
    {
        Ok((key, rows)) => Ok(Ok((
            key,
            readable(caller, name, store::locked_for_claim(&rows)?)?,
        ))),
        Err(replay) => Ok(Err(replay)),
    }
}

impl CustomersApi {
    /// The business time zone (`customers.time_zone`; Asia/Shanghai if unparsable).
    fn business_tz(&self) -> chrono_tz::Tz {
        self.settings
            .time_zone
            .parse()
            .unwrap_or(chrono_tz::Asia::Shanghai)
    }

    /// Start of a local business date in UTC; `field` names the request field at fault.
    fn local_midnight(
        &self,
        date: chrono::NaiveDate,
        field: &str,
    ) -> Result<chrono::DateTime<chrono::Utc>, ServiceError> {
        use chrono::TimeZone as _;
        date.and_hms_opt(0, 0, 0)
            .and_then(|t| self.business_tz().from_local_datetime(&t).earliest())
            .map(|t| t.with_timezone(&chrono::Utc))
            .ok_or_else(|| ServiceError::invalid_field(field, "is out of range"))
    }
}

/// Whether this caller sees the profile with its contact phone masked.
fn must_mask(caller: &Caller, customer: &Customer) -> bool {
    !access::sees_contact_phone(caller, holder(customer))
}

/// The profile with its contact phone masked.
fn masked(mut customer: Customer) -> Customer {
    customer.contact_phone = access::mask_phone(&customer.contact_phone);
    customer
}

/// The profile as this caller may see it.
fn present(caller: &Caller, customer: Customer) -> Customer {
    if must_mask(caller, &customer) {
        masked(customer)
    } else {
        customer
    }
}

/// A profile as stored or as cached, whose holder decides who may read it.
trait Held {
    fn holder(&self) -> Holder<'_>;
}

impl Held for Customer {
    fn holder(&self) -> Holder<'_> {
        holder(self)
    }
}

impl Held for Arc<Profile> {
    fn holder(&self) -> Holder<'_> {
        holder(self.customer())
    }
}

/// Out of scope reads answer NOT_FOUND so that existence does not leak.
fn readable<C: Held>(caller: &Caller, name: &str, customer: Option<C>) -> Result<C, ServiceError> {
    customer
        .filter(|c| access::may_read(caller, c.holder()))
        .ok_or_else(|| ServiceError::not_found(name))
}

impl CustomersApi {
    /// A profile change, in the transaction: `CustomerChanged` (the full profile) to
    /// the subscribers, and the profile as the caller may see it stored as the
    /// request's response and returned.
    async fn announce(
        &self,
        tx: &mut sqlx::PgConnection,
        key: idempotency::IdempotencyKey,
        caller: &Caller,
        changed: Customer,
    ) -> Result<Customer, ServiceError> {
        let event = CustomerChanged {
            customer: Some(changed.clone()),
        };
        let response = present(caller, changed);
        key.complete_publishing(tx, &response, &self.outbox, &response.name, &event)
            .await?;
        Ok(response)
    }

    async fn create(&self, caller: Caller, request: CreateCustomerRequest) -> Result<Customer, ServiceError> {
        caller.require(access::CREATORS)?;
        let mut v = Violations::new();
        v.request_id(&request.request_id);
        v.check(
            request.customer_id.is_empty() || is_valid_id(&request.customer_id),
            "customer_id",
            "must be 1..63 of [a-z0-9-]",
        );
        let mut customer = request.customer.clone().unwrap_or_default();
        if customer.owner_id.is_empty() && caller.role == auth::Role::CustomerManager {
            customer.owner_id = caller.sub.clone();
        }
        if request.customer.is_none() {
            v.add("customer", "must be set");
        } else {
            profile::validate(&customer, "customer", &mut v);
        }
        v.into_result()?;
        if !access::may_place_in_area(&caller, &customer.area_id) {
            return Err(ServiceError::permission_denied(format!(
                "area {} is not one of yours",
                customer.area_id
            )));
        }

        let mut tx = self.pool.begin().await?;
        let key = match idempotency::claim(&mut tx, &caller, &request.request_id, "CreateCustomer", &request)
            .await?
        {
            Claim::Replay(response) => return Ok(response),
            Claim::Fresh(key) => key,
        };
        let id = if request.customer_id.is_empty() {
            format!("c-{}", uuid::Uuid::now_v7().simple())
        } else {
            request.customer_id.clone()
        };
        let created = store::insert(&mut tx, &id, &customer, &caller.sub).await?;
        store::insights::touch(&mut tx).await?;
        let response = self.announce(&mut tx, key, &caller, created).await?;
        tx.commit().await?;
        self.caches.changed(None);
        Ok(response)
    }

    async fn get(&self, caller: Caller, request: GetCustomerRequest) -> Result<Shown, ServiceError> {
        caller.require(access::READERS)?;
        let id = parse_name(&request.name, "customers", "name")?;
        let profile = readable(&caller, &request.name, self.profile(id).await?)?;
        Ok(Shown::to(&caller, profile))
    }

    async fn batch_get(
        &self,
        caller: Caller,
        request: BatchGetCustomersRequest,
    ) -> Result<BatchGetCustomersResponse, ServiceError> {
        caller.require(access::READERS)?;
        if request.names.len() > MAX_BATCH {
            return Err(ServiceError::invalid_field(
                "names",
                format!("at most {MAX_BATCH} names"),
            ));
        }
        let mut wanted = Vec::with_capacity(request.names.len());
        for (i, name) in request.names.iter().enumerate() {
            wanted.push((parse_name(name, "customers", &format!("names[{i}]"))?, None));
        }
        let found = self.profiles(&wanted).await?;
        let by_name: std::collections::HashMap<&str, &Arc<Profile>> =
            found.iter().map(|p| (p.customer().name.as_str(), p)).collect();
        let mut customers = Vec::with_capacity(request.names.len());
        for name in &request.names {
            let profile = readable(&caller, name, by_name.get(name.as_str()).map(|p| Arc::clone(p)))?;
            customers.push(Shown::to(&caller, profile).customer());
        }
        Ok(BatchGetCustomersResponse { customers })
    }

    async fn list(&self, caller: Caller, request: ListCustomersRequest) -> Result<ShownPage, ServiceError> {
        caller.require(access::READERS)?;
        let mut v = Violations::new();
        v.check(request.page_size >= 0, "page_size", "must not be negative");
        v.known_enum::<CustomerFormat>(request.format, "format");
        v.known_enum::<CustomerStatus>(request.status, "status");
        v.text(&request.name_prefix, "name_prefix", 100);
        v.text(&request.area_id, "area_id", 63);
        v.text(&request.owner_id, "owner_id", 63);
        v.known_enum::<Segment>(request.segment, "segment");
        v.known_enum::<CustomerFlag>(request.flag, "flag");
        v.into_result()?;
        if (request.segment != 0 || request.flag != 0) && !INSIGHT_READERS.contains(&caller.role) {
            return Err(ServiceError::permission_denied(
                "filtering by segment or flag needs the right to read insights",
            ));
        }
        let filter = store::ListFilter {
            area_id: request.area_id,
            owner_id: request.owner_id,
            format: request.format,
            status: request.status,
            name_prefix: request.name_prefix,
            segment: request.segment,
            flag_bit: CustomerFlag::try_from(request.flag)
                .ok()
                .filter(|f| *f != CustomerFlag::Unspecified)
                .map_or(0, insights::flag_bit),
        };
        let fingerprint = format!("{filter:?}");
        let page = pagination::read(request.page_size, &request.page_token, &fingerprint)?;
        // Tokens are not signed: one whose key is not an id was not issued here (and
        // must not make a cache key of any size).
        if page.after.as_deref().is_some_and(|after| !is_valid_id(after)) {
            return Err(ServiceError::invalid_field(
                "page_token",
                "is not a token this list issued",
            ));
        }
        let visibility = access::visibility(&caller);
        // Insights change apart from profiles (no notification): those lists are read.
        let cacheable = self.caches.pages.caches()
            && filter.segment == 0
            && filter.flag_bit == 0
            && page.size <= MAX_CACHED_PAGE;
        let key = cacheable.then(|| {
            format!(
                "{visibility:?}\u{1f}{fingerprint}\u{1f}{:?}\u{1f}{}",
                page.after, page.size
            )
        });
        let listed = match key.as_deref().and_then(|key| self.caches.pages.get(key)) {
            Some(listed) => listed,
            None => {
                let ticket = self.caches.pages.ticket();
                let mut conn = self.reads.acquire().await?;
                let rows = store::list(&mut conn, &filter, &visibility, &page).await?;
                conn.release();
                let (ids, next_page_token) =
                    pagination::finish(rows, &page, &fingerprint, |(id, _)| id.clone());
                let listed = Arc::new(ListedPage { ids, next_page_token });
                if let Some(key) = &key {
                    self.caches.pages.put(ticket, key, Arc::clone(&listed));
                }
                listed
            }
        };
        let wanted: Vec<(&str, Option<i64>)> =
            listed.ids.iter().map(|(id, v)| (id.as_str(), Some(*v))).collect();
        // A profile that was not cached at its listed version is read again, and may
        // have changed in between: it is shown only if the caller may still read it.
        let customers = self
            .profiles(&wanted)
            .await?
            .into_iter()
            .filter(|p| access::may_read(&caller, p.holder()))
            .map(|p| Shown::to(&caller, p))
            .collect();
        Ok(ShownPage {
            customers,
            next_page_token: listed.next_page_token.clone(),
        })
    }

    async fn update(&self, caller: Caller, request: UpdateCustomerRequest) -> Result<Customer, ServiceError> {
        caller.require(access::EDITORS)?;
        let mut v = Violations::new();
        v.request_id(&request.request_id);
        let Some(patch) = request.customer.clone() else {
            v.add("customer", "must be set");
            return Err(v
                .into_result()
                .err()
                .unwrap_or_else(|| ServiceError::invalid_field("customer", "must be set")));
        };
        v.into_result()?;
        let id = parse_name(&patch.name, "customers", "customer.name")?.to_string();
        let paths = request.update_mask.clone().map(|m| m.paths).unwrap_or_default();

        let mut tx = self.pool.begin().await?;
        let key = match idempotency::claim(&mut tx, &caller, &request.request_id, "UpdateCustomer", &request)
            .await?
        {
            Claim::Replay(response) => return Ok(response),
            Claim::Fresh(key) => key,
        };
        let current = store::get_for_update(&mut tx, &id).await?;
        let current = readable(&caller, &patch.name, current)?;
        if !access::may_edit(&caller, holder(&current)) {
            return Err(ServiceError::permission_denied(
                "you may not change this customer",
            ));
        }
        if !patch.etag.is_empty() && patch.etag != current.etag {
            return Err(
                ServiceError::stale_etag(&patch.name).with_metadata("current_etag", current.etag.clone())
            );
        }
        let next = profile::apply_update_mask(&current, &patch, &paths)?;
        let mut v = Violations::new();
        profile::validate(&next, "customer", &mut v);
        v.into_result()?;
        if next.area_id != current.area_id && !access::may_place_in_area(&caller, &next.area_id) {
            return Err(ServiceError::permission_denied(format!(
                "area {} is not one of yours",
                next.area_id
            )));
        }
        let updated = store::update(&mut tx, &id, &next).await?;
        store::insights::touch(&mut tx).await?;
        let response = self.announce(&mut tx, key, &caller, updated).await?;
        tx.commit().await?;
        self.caches.changed(Some(&id));
        Ok(response)
    }

    async fn reassign(
        &self,
        caller: Caller,
        request: ReassignOwnerRequest,
    ) -> Result<Customer, ServiceError> {
        caller.require(access::OWNER_ASSIGNERS)?;
        let mut v = Violations::new();
        v.request_id(&request.request_id);
        v.non_empty(&request.new_owner_id, "new_owner_id");
        v.text(&request.new_owner_id, "new_owner_id", 63);
        v.non_empty(&request.reason, "reason");
        v.text(&request.reason, "reason", 500);
        v.into_result()?;
        let id = parse_name(&request.name, "customers", "name")?.to_string();

        let mut tx = self.pool.begin().await?;
        let key = match idempotency::claim(&mut tx, &caller, &request.request_id, "ReassignOwner", &request)
            .await?
        {
            Claim::Replay(response) => return Ok(response),
            Claim::Fresh(key) => key,
        };
        let current = store::get_for_update(&mut tx, &id)
            .await?
            .ok_or_else(|| ServiceError::not_found(&request.name))?;
        if !request.etag.is_empty() && request.etag != current.etag {
            return Err(
                ServiceError::stale_etag(&request.name).with_metadata("current_etag", current.etag.clone())
            );
        }
        if current.owner_id == request.new_owner_id {
            return Err(ServiceError::failed_precondition(
                "ALREADY_OWNER",
                format!("{} already owns {}", request.new_owner_id, request.name),
            ));
        }
        let updated =
            store::reassign_owner(&mut tx, &id, &request.new_owner_id, &caller.sub, &request.reason).await?;
        let response = self.announce(&mut tx, key, &caller, updated).await?;
        tx.commit().await?;
        self.caches.changed(Some(&id));
        Ok(response)
    }

    async fn history(
        &self,
        caller: Caller,
        request: ListOwnershipHistoryRequest,
    ) -> Result<ListOwnershipHistoryResponse, ServiceError> {
        caller.require(access::READERS)?;
        let id = parse_name(&request.name, "customers", "name")?;
        readable(&caller, &request.name, store::get(&self.pool, id).await?)?;
        Ok(ListOwnershipHistoryResponse {
            ownerships: store::ownership_history(&self.pool, id).await?,
        })
    }
}

#[tonic::async_trait]
impl CustomerService for CustomersApi {
    async fn create_customer(
        &self,
        request: Request<CreateCustomerRequest>,
    ) -> Result<Response<Customer>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| self.create(caller, message)).await
    }

    async fn get_customer(&self, request: Request<GetCustomerRequest>) -> Result<Response<Customer>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| async move {
            Ok(self.get(caller, message).await?.customer())
        })
        .await
    }

    async fn batch_get_customers(
        &self,
        request: Request<BatchGetCustomersRequest>,
    ) -> Result<Response<BatchGetCustomersResponse>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| self.batch_get(caller, message)).await
    }

    async fn list_customers(
        &self,
        request: Request<ListCustomersRequest>,
    ) -> Result<Response<ListCustomersResponse>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| async move {
            let page = self.list(caller, message).await?;
            Ok(ListCustomersResponse {
                customers: page.customers.iter().map(Shown::customer).collect(),
                next_page_token: page.next_page_token,
            })
        })
        .await
    }

    async fn update_customer(
        &self,
        request: Request<UpdateCustomerRequest>,
    ) -> Result<Response<Customer>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| self.update(caller, message)).await
    }

    async fn reassign_owner(
        &self,
        request: Request<ReassignOwnerRequest>,
    ) -> Result<Response<Customer>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| self.reassign(caller, message)).await
    }

    async fn list_ownership_history(
        &self,
        request: Request<ListOwnershipHistoryRequest>,
    ) -> Result<Response<ListOwnershipHistoryResponse>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| self.history(caller, message)).await
    }

    async fn log_interaction(
        &self,
        request: Request<LogInteractionRequest>,
    ) -> Result<Response<Interaction>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.log_interaction(caller, message)
        })
        .await
    }

    async fn list_interactions(
        &self,
        request: Request<ListInteractionsRequest>,
    ) -> Result<Response<ListInteractionsResponse>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.list_interactions(caller, message)
        })
        .await
    }

    async fn get_visit_plan(
        &self,
        request: Request<GetVisitPlanRequest>,
    ) -> Result<Response<VisitPlan>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.visit_plan(caller, message)
        })
        .await
    }

    async fn get_visit_compliance(
        &self,
        request: Request<GetVisitComplianceRequest>,
    ) -> Result<Response<VisitCompliance>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.visit_compliance(caller, message)
        })
        .await
    }

    async fn record_survey(&self, request: Request<RecordSurveyRequest>) -> Result<Response<Survey>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.record_survey(caller, message)
        })
        .await
    }

    async fn get_customer_insights(
        &self,
        request: Request<GetCustomerInsightsRequest>,
    ) -> Result<Response<CustomerInsights>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.customer_insights(caller, message)
        })
        .await
    }

    async fn import_order_history(
        &self,
        request: Request<ImportOrderHistoryRequest>,
    ) -> Result<Response<ImportOrderHistoryResponse>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.import_order_history(caller, message)
        })
        .await
    }

    async fn open_case(&self, request: Request<OpenCaseRequest>) -> Result<Response<Case>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| self.open_case(caller, message)).await
    }

    async fn get_case(&self, request: Request<GetCaseRequest>) -> Result<Response<Case>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| self.get_case(caller, message)).await
    }

    async fn transfer_case(&self, request: Request<TransferCaseRequest>) -> Result<Response<Case>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.transfer_case(caller, message)
        })
        .await
    }

    async fn resolve_case(&self, request: Request<ResolveCaseRequest>) -> Result<Response<Case>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.resolve_case(caller, message)
        })
        .await
    }

    async fn record_callback(
        &self,
        request: Request<RecordCallbackRequest>,
    ) -> Result<Response<Case>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.record_callback(caller, message)
        })
        .await
    }

    async fn close_case(&self, request: Request<CloseCaseRequest>) -> Result<Response<Case>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.close_case(caller, message)
        })
        .await
    }

    async fn list_cases(
        &self,
        request: Request<ListCasesRequest>,
    ) -> Result<Response<ListCasesResponse>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.list_cases(caller, message)
        })
        .await
    }

    async fn get_case_stats(
        &self,
        request: Request<GetCaseStatsRequest>,
    ) -> Result<Response<CaseStats>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.case_stats(caller, message)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_committed_change_empties_this_replicas_pages_and_evicts_its_profile() {
        let caches = Caches::new(&CustomersSettings::default());
        for cache in caches.followers() {
            cache.set_live(true);
        }
        let profile = |id: &str| {
            Arc::new(Profile::new(Customer {
                name: format!("customers/{id}"),
                ..Customer::default()
            }))
        };
        let page = || {
            Arc::new(ListedPage {
                ids: vec![("r-1".into(), 1), ("r-2".into(), 1)],
                next_page_token: String::new(),
            })
        };
        let fill = |caches: &Caches| {
            for id in ["r-1", "r-2"] {
                caches.profiles.put(caches.profiles.ticket(), id, profile(id));
            }
            caches.pages.put(caches.pages.ticket(), "area-01", page());
        };

        fill(&caches);
        caches.changed(None);
        assert!(
            caches.pages.get("area-01").is_none(),
            "an addition empties the pages"
        );
        assert_eq!(caches.profiles.len(), 2, "and keeps every profile");

        fill(&caches);
        caches.changed(Some("r-1"));
        assert!(
            caches.pages.get("area-01").is_none(),
            "a change empties the pages"
        );
        assert!(caches.profiles.get("r-1").is_none(), "and evicts its profile");
        assert!(caches.profiles.get("r-2").is_some(), "only its own");
    }
}
