//! The glue every RPC handler shares: take the authenticated caller from the
//! request, run the handler, map its error to a `Status` in the service's domain.

use std::future::Future;

use tonic::{Request, Response, Status};

use crate::auth::{self, Caller};
use crate::error::ServiceError;

/// Runs `handler` with the caller and the message of `request`.
pub async fn handle<T, R, F, Fut>(
    domain: &str,
    request: Request<T>,
    handler: F,
) -> Result<Response<R>, Status>
where
    F: FnOnce(Caller, T) -> Fut,
    Fut: Future<Output = Result<R, ServiceError>>,
{
    let (caller, message) = auth::caller(request).map_err(|e| e.into_status(domain))?;
    handler(caller, message)
        .await
        .map(Response::new)
        .map_err(|e| e.into_status(domain))
}
