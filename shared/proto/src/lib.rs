//! The distnet contracts, generated from `proto/distnet/**`.

#![allow(clippy::all, clippy::pedantic, missing_docs)]

pub mod common {
    pub mod v1 {
        tonic::include_proto!("distnet.common.v1");
    }
}

pub mod accreditation {
    pub mod v1 {
        tonic::include_proto!("distnet.accreditation.v1");
    }
}

pub mod allocation {
    pub mod v1 {
        tonic::include_proto!("distnet.allocation.v1");
    }
}

pub mod customers {
    pub mod v1 {
        tonic::include_proto!("distnet.customers.v1");
    }
}

pub mod logistics {
    pub mod v1 {
        tonic::include_proto!("distnet.logistics.v1");
    }
}

pub mod events {
    pub mod v1 {
        tonic::include_proto!("distnet.events.v1");
    }
}

/// Encoded `FileDescriptorSet` of every distnet proto and its imports, for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/distnet_descriptor.bin"));

/// Events travel in an `EventEnvelope` as `google.protobuf.Any`; naming them lets
/// `Any::from_msg` / `Any::to_msg` check the type.
macro_rules! named_events {
    ($($event:ident),* $(,)?) => {
        $(
            impl prost::Name for events::v1::$event {
                const NAME: &'static str = stringify!($event);
                const PACKAGE: &'static str = "distnet.events.v1";
            }
        )*
    };
}

named_events!(
    CustomerChanged,
    StandingChanged,
    OrderConfirmed,
    OrderCancelled,
    DeliveryCompleted,
    DeliveryFailed,
    CaseEscalated,
);
