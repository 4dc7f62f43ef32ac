//! The one synchronous call logistics makes (DESIGN.md "How services talk"): the
//! retailers' addresses, locations and receiving windows from `BatchGetCustomers`,
//! as the `service` role.

use distnet_platform::ServiceError;
use distnet_proto::customers::v1::customer_service_client::CustomerServiceClient;
use distnet_proto::customers::v1::{BatchGetCustomersRequest, Customer};
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

#[derive(Clone)]
pub struct ServiceToken(MetadataValue<tonic::metadata::Ascii>);

impl Interceptor for ServiceToken {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        // The event being applied (or the RPC being served) continues in customers.
        distnet_platform::telemetry::inject_current_context(request.metadata_mut());
        Ok(request)
    }
}

#[derive(Clone)]
pub struct Customers {
    client: CustomerServiceClient<InterceptedService<Channel, ServiceToken>>,
    timeout: std::time::Duration,
}

impl Customers {
    /// A lazily connected client of the customers service at `url` (TLS for
    /// `https://` URLs, per `tls`).
    pub fn new(
        url: &str,
        tls: &distnet_platform::settings::TlsSettings,
        token: &str,
        timeout: std::time::Duration,
    ) -> anyhow::Result<Self> {
        let channel = distnet_platform::tls::endpoint(url, tls, timeout)?.connect_lazy();
        let value: MetadataValue<_> = format!("Bearer {token}").parse()?;
        Ok(Self {
            client: CustomerServiceClient::with_interceptor(channel, ServiceToken(value)),
            timeout,
        })
    }

    /// The customers named `customers/{id}`; unreachable is `UNAVAILABLE`, so the
    /// event that needed them is retried.
    pub async fn batch_get(&self, names: Vec<String>) -> Result<Vec<Customer>, ServiceError> {
        let mut client = self.client.clone();
        // What is left of the call being served (an event delivery), if less than the
        // client's own timeout: the deadline travels downstream.
        let mut request = tonic::Request::new(BatchGetCustomersRequest { names });
        request.set_timeout(distnet_platform::deadline::budget(self.timeout));
        client
            .batch_get_customers(request)
            .await
            .map(|r| r.into_inner().customers)
            .map_err(|status| {
                ServiceError::unavailable(format!(
                    "customers service: {} {}",
                    status.code(),
                    status.message()
                ))
                .with_retry_after(std::time::Duration::from_secs(1))
            })
    }
}
