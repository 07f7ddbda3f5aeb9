//! kefu's gRPC contracts. Each service's package lives in its own module;
//! `FILE_DESCRIPTOR_SET` feeds gRPC reflection.
#![allow(unreachable_pub, clippy::all, clippy::pedantic, missing_docs)]

/// Encoded `FileDescriptorSet` of every kefu `.proto` (for reflection).
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/kefu_descriptor.bin"));

pub mod customers {
    pub mod v1 {
        tonic::include_proto!("kefu.customers.v1");
    }
}

pub mod tickets {
    pub mod v1 {
        tonic::include_proto!("kefu.tickets.v1");
    }
}
