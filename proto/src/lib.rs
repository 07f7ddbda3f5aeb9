//! kefu's gRPC contracts. Each service's package lives in its own module;
//! `kefu.common.v1` holds what they share. `FILE_DESCRIPTOR_SET` feeds gRPC
//! reflection and the gateway.
#![allow(unreachable_pub, clippy::all, clippy::pedantic, missing_docs)]

/// Encoded `FileDescriptorSet` of every kefu `.proto` (for reflection).
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/kefu_descriptor.bin"));

/// A protobuf enum of the contracts: its name and valid values (the
/// `*_UNSPECIFIED = 0` value included), so errors can list what is allowed.
pub trait ProtoEnum: TryFrom<i32> + Copy + Into<i32> {
    const NAME: &'static str;
    const VALUES: &'static [(i32, &'static str)];

    /// The value's name in the contract (`CHANNEL_WECHAT`).
    fn name(self) -> &'static str {
        let n: i32 = self.into();
        Self::VALUES.iter().find(|(v, _)| *v == n).map_or("", |(_, s)| s)
    }
}

pub mod common {
    pub mod v1 {
        tonic::include_proto!("kefu.common.v1");
    }
}

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

pub mod complaints {
    pub mod v1 {
        tonic::include_proto!("kefu.complaints.v1");
    }
}

pub mod performance {
    pub mod v1 {
        tonic::include_proto!("kefu.performance.v1");
    }
}

pub mod staff {
    pub mod v1 {
        tonic::include_proto!("kefu.staff.v1");
    }
}

pub mod training {
    pub mod v1 {
        tonic::include_proto!("kefu.training.v1");
    }
}

include!(concat!(env!("OUT_DIR"), "/kefu_enums.rs"));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_know_their_names_and_values() {
        assert_eq!(common::v1::Channel::Wechat.name(), "CHANNEL_WECHAT");
        assert_eq!(<common::v1::Channel as ProtoEnum>::NAME, "Channel");
        assert!(<tickets::v1::Status as ProtoEnum>::VALUES.contains(&(0, "STATUS_UNSPECIFIED")));
    }
}
