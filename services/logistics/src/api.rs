//! `distnet.logistics.v1.LogisticsService`: validate → authorize → rules in
//! `domain/` → store → reply.

use distnet_platform::auth::Caller;
use distnet_platform::clock::SharedClock;
use distnet_platform::events::Outbox;
use distnet_platform::validate::parse_name;
use distnet_platform::{ServiceError, pagination, rpc};
use distnet_proto::logistics::v1::logistics_service_server::LogisticsService;
use distnet_proto::logistics::v1::*;
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::domain::access;
use crate::events::Placements;
use crate::store::{self, ShipmentFilter};

pub const DOMAIN: &str = "logistics.distnet";

mod access_rules;
mod delivery;
mod network_api;
mod plans;

pub use access_rules::ACCESS;

pub use delivery::{MAX_ATTEMPTS, ON_TIME_TOLERANCE_MINUTES};

pub struct LogisticsApi {
    pool: PgPool,
    outbox: Outbox,
    clock: SharedClock,
    /// Emptied after this replica changes the network, so the next confirmed order
    /// is placed by the change (other replicas hear of it from the database).
    placements: Placements,
}

impl LogisticsApi {
    pub fn new(pool: PgPool, outbox: Outbox, clock: SharedClock, placements: Placements) -> Self {
        Self {
            pool,
            outbox,
            clock,
            placements,
        }
    }
}

pub(crate) use distnet_platform::idempotency::begin as begin_idempotent;

/// "YYYY-MM-DD".
pub(crate) fn parse_date(text: &str, field: &str) -> Result<chrono::NaiveDate, ServiceError> {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| ServiceError::invalid_field(field, "must be a date YYYY-MM-DD"))
}

impl LogisticsApi {
    async fn get_shipment(
        &self,
        caller: Caller,
        message: GetShipmentRequest,
    ) -> Result<Shipment, ServiceError> {
        let id = message
            .name
            .strip_prefix("shipments/")
            .filter(|id| uuid::Uuid::parse_str(id).is_ok())
            .ok_or_else(|| ServiceError::invalid_field("name", "must be `shipments/{id}`"))?;
        caller.require(access::SHIPMENT_READERS)?;
        let mut conn = self.pool.acquire().await?;
        let view = store::shipment(&mut conn, id).await?;
        // Out of scope is NOT_FOUND: other retailers' shipments do not leak.
        match view {
            Some(v)
                if caller.sees_retailer(
                    &v.shipment.customer_id,
                    &v.shipment.area_id,
                    v.owner_id.as_deref().filter(|o| !o.is_empty()),
                ) && v
                    .shipment
                    .depot_id
                    .as_deref()
                    .is_none_or(|d| access::manages_depot(&caller, d)) =>
            {
                Ok(v.to_wire())
            }
            _ => Err(ServiceError::not_found(message.name.clone())),
        }
    }

    async fn list_shipments(
        &self,
        caller: Caller,
        message: ListShipmentsRequest,
    ) -> Result<ListShipmentsResponse, ServiceError> {
        let depot = if message.depot.is_empty() {
            None
        } else {
            Some(parse_name(&message.depot, "depots", "depot")?)
        };
        let slot_date = if message.slot_date.is_empty() {
            None
        } else {
            Some(parse_date(&message.slot_date, "slot_date")?)
        };
        let mut v = distnet_platform::validate::Violations::new();
        v.known_enum::<Half>(message.slot_half, "slot_half");
        v.known_enum::<ShipmentStatus>(message.status, "status");
        v.into_result()?;
        let filter = format!(
            "{}|{}|{}|{}",
            message.depot, message.slot_date, message.slot_half, message.status
        );
        let page = pagination::read(message.page_size, &message.page_token, &filter)?;
        caller.require(access::SHIPMENT_LISTERS)?;
        let depot = match (depot, caller.depot.as_deref()) {
            (Some(d), _) => {
                access::ensure_depot(&caller, d)?;
                Some(d.to_string())
            }
            (None, Some(own)) if caller.role == distnet_platform::auth::Role::Dispatcher => {
                Some(own.to_string())
            }
            (None, _) => None,
        };
        let mut conn = self.pool.acquire().await?;
        let rows = store::shipments(
            &mut conn,
            &ShipmentFilter {
                depot_id: depot.as_deref(),
                slot_date,
                slot_half: (message.slot_half != 0).then(|| i16::try_from(message.slot_half).unwrap_or(0)),
                status: (message.status != 0).then(|| i16::try_from(message.status).unwrap_or(0)),
            },
            &page,
        )
        .await?;
        let (rows, next_page_token) =
            pagination::finish(rows, &page, &filter, |s| s.shipment.shipment_id.clone());
        Ok(ListShipmentsResponse {
            shipments: rows.iter().map(store::ShipmentView::to_wire).collect(),
            next_page_token,
        })
    }
}

#[tonic::async_trait]
impl LogisticsService for LogisticsApi {
    async fn upsert_depot(&self, request: Request<UpsertDepotRequest>) -> Result<Response<Depot>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.upsert_depot(caller, message)
        })
        .await
    }

    async fn get_depot(&self, request: Request<GetDepotRequest>) -> Result<Response<Depot>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| self.get_depot(caller, message)).await
    }

    async fn set_cutoff_schedule(
        &self,
        request: Request<SetCutoffScheduleRequest>,
    ) -> Result<Response<Depot>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.set_cutoff_schedule(caller, message)
        })
        .await
    }

    async fn upsert_zone(&self, request: Request<UpsertZoneRequest>) -> Result<Response<Zone>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.upsert_zone(caller, message)
        })
        .await
    }

    async fn list_zones(
        &self,
        request: Request<ListZonesRequest>,
    ) -> Result<Response<ListZonesResponse>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.list_zones(caller, message)
        })
        .await
    }

    async fn upsert_vehicle(
        &self,
        request: Request<UpsertVehicleRequest>,
    ) -> Result<Response<Vehicle>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.upsert_vehicle(caller, message)
        })
        .await
    }

    async fn list_vehicles(
        &self,
        request: Request<ListVehiclesRequest>,
    ) -> Result<Response<ListVehiclesResponse>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.list_vehicles(caller, message)
        })
        .await
    }

    async fn get_shipment(&self, request: Request<GetShipmentRequest>) -> Result<Response<Shipment>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.get_shipment(caller, message)
        })
        .await
    }

    async fn list_shipments(
        &self,
        request: Request<ListShipmentsRequest>,
    ) -> Result<Response<ListShipmentsResponse>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.list_shipments(caller, message)
        })
        .await
    }

    async fn plan_routes(&self, request: Request<PlanRoutesRequest>) -> Result<Response<Plan>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.plan_routes(caller, message)
        })
        .await
    }

    async fn get_plan(&self, request: Request<GetPlanRequest>) -> Result<Response<Plan>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| self.get_plan(caller, message)).await
    }

    async fn publish_plan(&self, request: Request<PublishPlanRequest>) -> Result<Response<Plan>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.publish_plan(caller, message)
        })
        .await
    }

    async fn replan_routes(&self, request: Request<ReplanRoutesRequest>) -> Result<Response<Plan>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.replan_routes(caller, message)
        })
        .await
    }

    async fn get_my_route(&self, request: Request<GetMyRouteRequest>) -> Result<Response<MyRoute>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.get_my_route(caller, message)
        })
        .await
    }

    async fn record_stop_event(
        &self,
        request: Request<RecordStopEventRequest>,
    ) -> Result<Response<RecordStopEventResponse>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.record_stop_event(caller, message)
        })
        .await
    }

    async fn get_day_report(
        &self,
        request: Request<GetDayReportRequest>,
    ) -> Result<Response<DayReport>, Status> {
        rpc::handle(DOMAIN, request, |caller, message| {
            self.get_day_report(caller, message)
        })
        .await
    }
}
