//! Request decoders: any bytes either fail to decode or decode into a request that the
//! validators judge without panicking.
#![no_main]

use distnet_proto::customers::v1::{CreateCustomerRequest, ImportOrderHistoryRequest, UpdateCustomerRequest};
use libfuzzer_sys::fuzz_target;
use prost::Message as _;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = CreateCustomerRequest::decode(data) {
        let mut v = distnet_platform::validate::Violations::new();
        v.request_id(&request.request_id);
        if let Some(customer) = &request.customer {
            distnet_customers::domain::profile::validate(customer, "customer", &mut v);
            let _ = distnet_customers::domain::profile::missing_fields(customer);
        }
        let _ = v.into_result();
    }
    if let Ok(request) = UpdateCustomerRequest::decode(data) {
        if let (Some(patch), Some(mask)) = (&request.customer, &request.update_mask) {
            let current = distnet_proto::customers::v1::Customer::default();
            let _ = distnet_customers::domain::profile::apply_update_mask(&current, patch, &mask.paths);
        }
    }
    let _ = ImportOrderHistoryRequest::decode(data);
});
