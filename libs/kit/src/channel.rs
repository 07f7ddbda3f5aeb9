//! The names channels go by where people and policies name them (SLA
//! policy conditions, reports), one table for every service.
use kefu_proto::common::v1::Channel;

/// The names SLA policies match channels by.
pub const CHANNEL_NAMES: &[&str] = &["phone", "wechat", "email", "sms", "online_chat", "in_person", "letter"];

/// A stored channel's name; `unspecified` for none or an unknown value.
pub fn channel_name(c: i64) -> &'static str {
    match i32::try_from(c).ok().and_then(|c| Channel::try_from(c).ok()) {
        Some(Channel::Phone) => "phone",
        Some(Channel::OnlineChat) => "online_chat",
        Some(Channel::Email) => "email",
        Some(Channel::Wechat) => "wechat",
        Some(Channel::InPerson) => "in_person",
        Some(Channel::Sms) => "sms",
        Some(Channel::Letter) => "letter",
        _ => "unspecified",
    }
}
