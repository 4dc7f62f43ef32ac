//! What every distnet service needs, written once: settings, telemetry, database and
//! migrations, errors, auth, idempotency, the outbox and inbox, pagination and
//! server start-up.

pub mod auth;
pub mod authz;
pub mod cache;
pub mod clock;
pub mod cycle;
pub mod db;
pub mod deadline;
pub mod error;
pub mod events;
pub mod idempotency;
pub mod memory;
pub mod metrics;
pub mod middleware;
pub mod pagination;
pub mod postgres;
pub mod ratelimit;
pub mod retention;
pub mod rpc;
pub mod server;
pub mod settings;
pub mod telemetry;
pub mod tls;
pub mod validate;
pub mod wire;

pub use error::{ServiceError, ServiceResult};
pub use settings::Settings;
