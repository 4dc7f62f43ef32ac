//! `distnet.allocation.v1.AllocationService`: validate → authorize → rules in
//! `domain/` → store → reply. Orders go out as `OrderConfirmed` / `OrderCancelled`
//! in the same transaction as their effects.

use std::sync::Arc;

use distnet_platform::auth::Caller;
use distnet_platform::clock::SharedClock;
use distnet_platform::db::ReadConnections;
use distnet_platform::events::Outbox;
use distnet_platform::idempotency;
use distnet_platform::validate::parse_name;
use distnet_platform::{ServiceError, rpc};
use distnet_proto::allocation::v1::allocation_service_server::AllocationService;
use distnet_proto::allocation::v1::*;
use sqlx::{PgConnection, PgPool};
use tonic::{Request, Response, Status};

use crate::domain::cycle::CycleId;
use crate::store;

pub const DOMAIN: &str = "allocation.distnet";

mod access_rules;
mod catalog;
mod entitlements;
mod orders;
mod report;
mod runs;

pub use access_rules::ACCESS;
pub use entitlements::{
    CHANGES_CHANNEL as ENTITLEMENT_CHANGES, EntitlementCache, LIVE_CHANNEL as ENTITLEMENT_LIVE,
};

pub struct AllocationApi {
    pool: PgPool,
    outbox: Outbox,
    clock: SharedClock,
    /// `GetEntitlements`' make-up of each retailer's entitlements.
    entitlements: Arc<EntitlementCache>,
    /// Connections for `GetEntitlements`' reads, given back without the pool's ping.
    reads: ReadConnections,
}

impl AllocationApi {
    pub fn new(
        pool: PgPool,
        outbox: Outbox,
        clock: SharedClock,
        entitlements: Arc<EntitlementCache>,
        read_connections: usize,
    ) -> Self {
        Self {
            reads: ReadConnections::new(pool.clone(), read_connections),
            pool,
            outbox,
            clock,
            entitlements,
        }
    }
}

pub(crate) use distnet_platform::idempotency::begin as begin_idempotent;

/// Runs a mutation and, when it ends in a business refusal, remembers the refusal
/// under its request id, so a retry gets the same answer (DESIGN.md: a retried
/// request returns the original response). A refusal that could not be remembered
/// (the database went away) is not given out: the caller gets the failure, which is
/// retryable, so no answer reaches a client that a retry could contradict.
pub(crate) async fn remembering<R, M: prost::Message>(
    pool: &PgPool,
    caller: &Caller,
    request_id: &str,
    method: &'static str,
    request: &M,
    work: impl std::future::Future<Output = Result<R, ServiceError>>,
) -> Result<R, ServiceError> {
    let outcome = work.await;
    if let Err(error) = &outcome
        && idempotency::is_refusal(error)
        && let Err(failure) = idempotency::remember_refusal(
            pool,
            &caller.idempotency_scope(),
            request_id,
            method,
            request,
            error,
        )
        .await
    {
        tracing::warn!(%failure, method, "could not remember a refusal; the caller retries");
        return Err(failure);
    }
    outcome
}

/// `products/{sku}` → sku.
pub(crate) fn sku<'a>(name: &'a str, field: &str) -> Result<&'a str, ServiceError> {
    parse_name(name, "products", field)
}

/// `cycles/2026-W48` → the ISO week.
pub(crate) fn cycle_id(name: &str, field: &str) -> Result<CycleId, ServiceError> {
    name.strip_prefix("cycles/")
        .and_then(CycleId::parse)
        .ok_or_else(|| ServiceError::invalid_field(field, "must be `cycles/{YYYY-Www}`, an ISO week"))
}

/// `customers/{id}` → id.
pub(crate) fn customer_id<'a>(name: &'a str, field: &str) -> Result<&'a str, ServiceError> {
    parse_name(name, "customers", field)
}

/// The retailer as allocation knows it from its events, and in the caller's scope.
/// Not known yet (just created): `FAILED_PRECONDITION` with `RetryInfo`; out of
/// scope: `PERMISSION_DENIED`.
pub(crate) async fn retailer_in_scope(
    conn: &mut PgConnection,
    caller: &Caller,
    customer_id: &str,
) -> Result<store::Retailer, ServiceError> {
    in_scope(caller, customer_id, store::retailer(conn, customer_id).await?)
}

/// [`retailer_in_scope`] for a replica row already read.
pub(crate) fn in_scope(
    caller: &Caller,
    customer_id: &str,
    retailer: Option<store::Retailer>,
) -> Result<store::Retailer, ServiceError> {
    let scope = retailer
        .as_ref()
        .map(|r| (r.customer_id.as_str(), r.area_id.as_str(), r.owner_id.as_str()));
    check_scope(caller, customer_id, scope)?;
    retailer.ok_or_else(|| ServiceError::internal("a retailer in scope without its row"))
}

/// Whether `caller` may see the retailer whose (id, area, owner) the replica holds
/// (`None`: not known here).
pub(crate) fn check_scope(
    caller: &Caller,
    customer_id: &str,
    scope: Option<(&str, &str, &str)>,
) -> Result<(), ServiceError> {
    match scope {
        Some((id, area, owner)) if caller.sees_retailer(id, area, Some(owner).filter(|o| !o.is_empty())) => {
            Ok(())
        }
        Some(_) => Err(ServiceError::permission_denied(format!(
            "customers/{customer_id} is outside your scope"
        ))),
        None if caller.sees_retailer(customer_id, "", None) => Err(ServiceError::failed_precondition(
            "CUSTOMER_NOT_KNOWN",
            format!("customers/{customer_id} is not known to allocation yet; retry shortly"),
        )
        .with_retry_after(std::time::Duration::from_secs(2))),
        None => Err(ServiceError::permission_denied(format!(
            "customers/{customer_id} is outside your scope"
        ))),
    }
}

#[tonic::async_trait]
impl AllocationService for AllocationApi {
    async fn upsert_product(
        &self,
        request: Request<UpsertProductRequest>,
    ) -> Result<Response<Product>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.upsert_product(caller, message)
        })
        .await
    }

    async fn get_product(&self, request: Request<GetProductRequest>) -> Result<Response<Product>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.get_product(caller, message)
        })
        .await
    }

    async fn list_products(
        &self,
        request: Request<ListProductsRequest>,
    ) -> Result<Response<ListProductsResponse>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.list_products(caller, message)
        })
        .await
    }

    async fn upsert_cycle(&self, request: Request<UpsertCycleRequest>) -> Result<Response<Cycle>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.upsert_cycle(caller, message)
        })
        .await
    }

    async fn get_cycle(&self, request: Request<GetCycleRequest>) -> Result<Response<Cycle>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| self.get_cycle(caller, message)).await
    }

    async fn set_supply(&self, request: Request<SetSupplyRequest>) -> Result<Response<Supply>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.set_supply(caller, message)
        })
        .await
    }

    async fn get_supply(&self, request: Request<GetSupplyRequest>) -> Result<Response<Supply>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.get_supply(caller, message)
        })
        .await
    }

    async fn estimate_demand(
        &self,
        request: Request<EstimateDemandRequest>,
    ) -> Result<Response<DemandEstimate>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.estimate_demand(caller, message)
        })
        .await
    }

    async fn set_policy(&self, request: Request<SetPolicyRequest>) -> Result<Response<Policy>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.set_policy(caller, message)
        })
        .await
    }

    async fn get_policy(&self, request: Request<GetPolicyRequest>) -> Result<Response<Policy>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.get_policy(caller, message)
        })
        .await
    }

    async fn preview_allocation(
        &self,
        request: Request<PreviewAllocationRequest>,
    ) -> Result<Response<PreviewAllocationResponse>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| self.preview(caller, message)).await
    }

    async fn commit_allocation(
        &self,
        request: Request<CommitAllocationRequest>,
    ) -> Result<Response<CommitAllocationResponse>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| self.commit(caller, message)).await
    }

    async fn get_allocation(
        &self,
        request: Request<GetAllocationRequest>,
    ) -> Result<Response<Allocation>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.get_allocation(caller, message)
        })
        .await
    }

    async fn list_allocations(
        &self,
        request: Request<ListAllocationsRequest>,
    ) -> Result<Response<ListAllocationsResponse>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.list_allocations(caller, message)
        })
        .await
    }

    async fn release_unclaimed(
        &self,
        request: Request<ReleaseUnclaimedRequest>,
    ) -> Result<Response<ReleaseUnclaimedResponse>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.release_unclaimed(caller, message)
        })
        .await
    }

    async fn get_entitlements(
        &self,
        request: Request<GetEntitlementsRequest>,
    ) -> Result<Response<Entitlements>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.get_entitlements(caller, message)
        })
        .await
    }

    async fn place_order(&self, request: Request<PlaceOrderRequest>) -> Result<Response<Order>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| async move {
            let work = self.place_order(caller.clone(), message.clone());
            remembering(
                &self.pool,
                &caller,
                &message.request_id,
                "PlaceOrder",
                &message,
                work,
            )
            .await
        })
        .await
    }

    async fn cancel_order(&self, request: Request<CancelOrderRequest>) -> Result<Response<Order>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| async move {
            let work = self.cancel_order(caller.clone(), message.clone());
            remembering(
                &self.pool,
                &caller,
                &message.request_id,
                "CancelOrder",
                &message,
                work,
            )
            .await
        })
        .await
    }

    async fn get_order(&self, request: Request<GetOrderRequest>) -> Result<Response<Order>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| self.get_order(caller, message)).await
    }

    async fn list_orders(
        &self,
        request: Request<ListOrdersRequest>,
    ) -> Result<Response<ListOrdersResponse>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.list_orders(caller, message)
        })
        .await
    }

    async fn get_cycle_report(
        &self,
        request: Request<GetCycleReportRequest>,
    ) -> Result<Response<CycleReport>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.cycle_report(caller, message)
        })
        .await
    }
}
