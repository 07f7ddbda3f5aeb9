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

    /// What people read for the value, in Simplified Chinese (微信); the
    /// value's name when it has no label (`*_UNSPECIFIED`).
    fn label_zh(self) -> &'static str {
        label(self.name()).map_or(self.name(), |l| l.zh)
    }

    /// What people read for the value, in English (WeChat).
    fn label_en(self) -> &'static str {
        label(self.name()).map_or(self.name(), |l| l.en)
    }
}

/// An enum value's labels, from the one label table (`proto/labels.tsv`),
/// which the console, the OpenAPI descriptions and exports all read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label {
    pub zh: &'static str,
    pub en: &'static str,
}

mod labels {
    include!(concat!(env!("OUT_DIR"), "/kefu_labels.rs"));
}

/// Every enum value with its labels, in name order.
pub fn all_labels() -> impl Iterator<Item = (&'static str, Label)> {
    labels::LABELS.iter().map(|&(name, zh, en)| (name, Label { zh, en }))
}

/// The labels of the enum value named `value` (`CHANNEL_WECHAT`), if it has
/// any (every value but `*_UNSPECIFIED` has: the build checks).
pub fn label(value: &str) -> Option<Label> {
    labels::LABELS.binary_search_by(|(k, _, _)| (*k).cmp(value)).ok().map(|i| {
        let (_, zh, en) = labels::LABELS[i];
        Label { zh, en }
    })
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

    #[test]
    fn enum_values_read_as_chinese_and_english_labels() {
        assert_eq!(common::v1::Channel::Wechat.label_zh(), "微信");
        assert_eq!(common::v1::Channel::Wechat.label_en(), "WeChat");
        assert_eq!(staff::v1::PersonStatus::Left.label_zh(), "离职");
        assert_eq!(performance::v1::EvaluationState::Appealed.label_zh(), "申诉中");
        assert_eq!(label("STATUS_PENDING_CUSTOMER").map(|l| l.zh), Some("待客户回复"));
        assert_eq!(label("NO_SUCH_VALUE"), None);
        assert_eq!(tickets::v1::Status::Unspecified.label_zh(), "STATUS_UNSPECIFIED", "no label: the name");
        // Sorted, so lookups by name find every row.
        assert!(labels::LABELS.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(labels::LABELS.iter().all(|(_, zh, _)| !zh.starts_with(['=', '+', '-', '@'])));
    }
}
