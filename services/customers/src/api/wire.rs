//! `GetCustomer` and `ListCustomers` answered from profiles encoded once.
//!
//! A cached [`Profile`] keeps its protobuf encoding beside it (and, the first time a
//! caller who may not see the contact phone reads it, the encoding with the phone
//! masked). These two reads are most of the service's calls: answering them with
//! those bytes copies ~500 bytes per profile into the response instead of cloning
//! every profile's strings and encoding them again on every call (a list page is 50
//! profiles, ~25 KB; the clone, its frees and the encoding were about a quarter of a
//! page's server CPU).
//!
//! [`ProfileReads`] is the service's server: it hands the two methods to handlers
//! whose answers are those bytes ([`Encoded`]) and every other method to the
//! generated server. The bytes are exactly a `Customer` and a
//! `ListCustomersResponse`, so clients, reflection and grpcurl see no difference.

use std::convert::Infallible;
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};

use distnet_platform::auth::Caller;
use distnet_platform::{ServiceError, rpc};
use distnet_proto::customers::v1::customer_service_server::CustomerServiceServer;
use distnet_proto::customers::v1::{Customer, GetCustomerRequest, ListCustomersRequest};
use prost::Message as _;
use prost::bytes::{BufMut, Bytes};
use tonic::body::Body;
use tonic::codec::{Codec, EncodeBuf, Encoder};
use tonic::codegen::{BoxFuture, Context, Poll, Service, http};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Request, Response, Status};

use super::{CustomersApi, DOMAIN, masked, must_mask};

/// A profile as read from the database, with its encoding.
#[derive(Debug)]
pub struct Profile {
    customer: Customer,
    wire: Bytes,
    /// The encoding with the contact phone masked, made when first needed.
    masked: OnceLock<Bytes>,
}

impl Profile {
    pub fn new(customer: Customer) -> Self {
        let wire = Bytes::from(customer.encode_to_vec());
        Self {
            customer,
            wire,
            masked: OnceLock::new(),
        }
    }

    pub fn customer(&self) -> &Customer {
        &self.customer
    }
}

/// A profile as one caller may see it.
#[derive(Debug)]
pub struct Shown {
    profile: Arc<Profile>,
    masked: bool,
}

impl Shown {
    pub fn to(caller: &Caller, profile: Arc<Profile>) -> Self {
        let masked = must_mask(caller, &profile.customer);
        Self { profile, masked }
    }

    /// As a message.
    pub fn customer(&self) -> Customer {
        let customer = self.profile.customer.clone();
        if self.masked { masked(customer) } else { customer }
    }

    /// Encoded, as [`Shown::customer`] would encode.
    fn wire(&self) -> Bytes {
        if !self.masked {
            return self.profile.wire.clone();
        }
        self.profile
            .masked
            .get_or_init(|| Bytes::from(self.customer().encode_to_vec()))
            .clone()
    }
}

/// A `ListCustomers` page as one caller may see it.
#[derive(Debug)]
pub struct ShownPage {
    pub customers: Vec<Shown>,
    pub next_page_token: String,
}

/// An answer already encoded.
#[derive(Debug)]
enum Encoded {
    /// A `Customer`.
    Profile(Bytes),
    /// A `ListCustomersResponse`.
    Page {
        customers: Vec<Bytes>,
        next_page_token: String,
    },
}

impl Encoded {
    fn page(page: ShownPage) -> Self {
        Self::Page {
            customers: page.customers.iter().map(Shown::wire).collect(),
            next_page_token: page.next_page_token,
        }
    }

    fn write(&self, buf: &mut impl BufMut) {
        match self {
            Self::Profile(customer) => buf.put_slice(customer),
            Self::Page {
                customers,
                next_page_token,
            } => {
                // An embedded message is a length-delimited field, as bytes are.
                for customer in customers {
                    prost::encoding::bytes::encode(1, customer, buf);
                }
                if !next_page_token.is_empty() {
                    prost::encoding::string::encode(2, next_page_token, buf);
                }
            }
        }
    }
}

/// Requests decoded as the generated server decodes them; answers written as they are.
struct EncodedCodec<U>(PhantomData<U>);

impl<U: prost::Message + Default + Send + 'static> Codec for EncodedCodec<U> {
    type Encode = Encoded;
    type Decode = U;
    type Encoder = EncodedWriter;
    type Decoder = tonic_prost::ProstDecoder<U>;

    fn encoder(&mut self) -> EncodedWriter {
        EncodedWriter
    }

    fn decoder(&mut self) -> Self::Decoder {
        tonic_prost::ProstDecoder::default()
    }
}

struct EncodedWriter;

impl Encoder for EncodedWriter {
    type Item = Encoded;
    type Error = Status;

    fn encode(&mut self, item: Encoded, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.write(dst);
        Ok(())
    }
}

/// A read answered with encoded profiles.
trait EncodedRead: prost::Message + Default + Send + 'static {
    fn answer(
        api: Arc<CustomersApi>,
        caller: Caller,
        request: Self,
    ) -> impl Future<Output = Result<Encoded, ServiceError>> + Send;
}

impl EncodedRead for GetCustomerRequest {
    async fn answer(api: Arc<CustomersApi>, caller: Caller, request: Self) -> Result<Encoded, ServiceError> {
        Ok(Encoded::Profile(api.get(caller, request).await?.wire()))
    }
}

impl EncodedRead for ListCustomersRequest {
    async fn answer(api: Arc<CustomersApi>, caller: Caller, request: Self) -> Result<Encoded, ServiceError> {
        Ok(Encoded::page(api.list(caller, request).await?))
    }
}

/// The handler of an [`EncodedRead`], as the generated server's handlers are made.
struct Answer<R>(Arc<CustomersApi>, PhantomData<fn() -> R>);

impl<R: EncodedRead> UnaryService<R> for Answer<R> {
    type Response = Encoded;
    type Future = BoxFuture<Response<Encoded>, Status>;

    fn call(&mut self, request: Request<R>) -> Self::Future {
        let api = self.0.clone();
        Box::pin(async move {
            rpc::handle(DOMAIN, request, |caller, message| R::answer(api, caller, message)).await
        })
    }
}

const GET_CUSTOMER: &str = "/distnet.customers.v1.CustomerService/GetCustomer";
const LIST_CUSTOMERS: &str = "/distnet.customers.v1.CustomerService/ListCustomers";

/// `distnet.customers.v1.CustomerService`: the generated server, with `GetCustomer`
/// and `ListCustomers` answered from encoded profiles.
#[derive(Clone)]
pub struct ProfileReads {
    generated: CustomerServiceServer<CustomersApi>,
    api: Arc<CustomersApi>,
    max_message_bytes: usize,
}

impl ProfileReads {
    pub fn new(api: Arc<CustomersApi>, max_message_bytes: usize) -> Self {
        Self {
            generated: CustomerServiceServer::from_arc(api.clone())
                .max_decoding_message_size(max_message_bytes)
                .max_encoding_message_size(max_message_bytes),
            api,
            max_message_bytes,
        }
    }

    fn answer<R: EncodedRead>(
        &self,
        request: http::Request<Body>,
    ) -> BoxFuture<http::Response<Body>, Infallible> {
        let mut grpc = Grpc::new(EncodedCodec::<R>(PhantomData))
            .apply_max_message_size_config(Some(self.max_message_bytes), Some(self.max_message_bytes));
        let answer = Answer::<R>(self.api.clone(), PhantomData);
        Box::pin(async move { Ok(grpc.unary(answer, request).await) })
    }
}

impl NamedService for ProfileReads {
    const NAME: &'static str = <CustomerServiceServer<CustomersApi> as NamedService>::NAME;
}

impl Service<http::Request<Body>> for ProfileReads {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<http::Response<Body>, Infallible>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        match request.uri().path() {
            GET_CUSTOMER => self.answer::<GetCustomerRequest>(request),
            LIST_CUSTOMERS => self.answer::<ListCustomersRequest>(request),
            _ => self.generated.call(request),
        }
    }
}

#[cfg(test)]
mod tests {
    use distnet_platform::auth::{Claims, Role};
    use distnet_proto::customers::v1::ListCustomersResponse;

    use super::*;

    fn profile(id: &str, phone: &str) -> Arc<Profile> {
        Arc::new(Profile::new(Customer {
            name: format!("customers/{id}"),
            display_name: format!("Store {id} 便利店"),
            area_id: "area-01".into(),
            owner_id: "cm-001".into(),
            contact_phone: phone.into(),
            etag: "7".into(),
            ..Default::default()
        }))
    }

    fn caller(role: Role) -> Caller {
        Claims::new("someone", role, std::time::Duration::from_secs(60))
            .with_areas(["area-01"])
            .into()
    }

    fn encoded(answer: &Encoded) -> Vec<u8> {
        let mut buf = Vec::new();
        answer.write(&mut buf);
        buf
    }

    #[test]
    fn the_paths_are_the_generated_servers() {
        let name = <CustomerServiceServer<CustomersApi> as NamedService>::NAME;
        assert_eq!(GET_CUSTOMER, format!("/{name}/GetCustomer"));
        assert_eq!(LIST_CUSTOMERS, format!("/{name}/ListCustomers"));
    }

    #[test]
    fn a_profile_is_its_message_encoded_as_each_caller_may_see_it() {
        let stored = profile("r-00001", "13812345678");
        for role in [Role::CallCenterAgent, Role::Retailer, Role::Dispatcher] {
            let shown = Shown::to(&caller(role), stored.clone());
            let bytes = encoded(&Encoded::Profile(shown.wire()));
            let decoded = Customer::decode(bytes.as_slice()).expect("a Customer");
            assert_eq!(decoded, shown.customer(), "{role:?}");
            let phone = if role == Role::CallCenterAgent {
                "13812345678"
            } else {
                "138****5678"
            };
            assert_eq!(decoded.contact_phone, phone, "{role:?}");
        }
    }

    #[test]
    fn a_page_is_a_list_customers_response() {
        let agent = caller(Role::CallCenterAgent);
        let planner = caller(Role::Dispatcher);
        let page = |token: &str| ShownPage {
            customers: vec![
                Shown::to(&agent, profile("r-00001", "13812345678")),
                Shown::to(&planner, profile("r-00002", "13900001111")),
                Shown::to(&agent, profile("r-00003", "")),
            ],
            next_page_token: token.into(),
        };
        for token in ["", "next-page"] {
            let expected = ListCustomersResponse {
                customers: page(token).customers.iter().map(Shown::customer).collect(),
                next_page_token: token.into(),
            };
            let bytes = encoded(&Encoded::page(page(token)));
            assert_eq!(bytes, expected.encode_to_vec());
            assert_eq!(
                ListCustomersResponse::decode(bytes.as_slice()).expect("a page"),
                expected
            );
        }
        let empty = Encoded::page(ShownPage {
            customers: Vec::new(),
            next_page_token: String::new(),
        });
        assert!(encoded(&empty).is_empty());
    }
}
