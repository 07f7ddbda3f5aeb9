//! SLA policies: ordered rules; the first whose conditions match a record
//! gives, per metric, a duration, a clock and a warning point.
use serde::{Deserialize, Serialize};

use crate::calendar::Calendar;

/// What a target measures (SLA.md "Targets").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    FirstResponse,
    NextResponse,
    Resolution,
    FeedbackReply,
    Answer,
    Acknowledgement,
    PreliminaryOpinion,
    /// A complaint's corrective or preventive action, due on its date.
    CorrectiveAction,
}

impl Metric {
    pub const ALL: [Metric; 8] = [
        Metric::FirstResponse,
        Metric::NextResponse,
        Metric::Resolution,
        Metric::FeedbackReply,
        Metric::Answer,
        Metric::Acknowledgement,
        Metric::PreliminaryOpinion,
        Metric::CorrectiveAction,
    ];

    /// The metric as people read it.
    pub fn label_zh(self) -> &'static str {
        match self {
            Metric::FirstResponse => "首次响应",
            Metric::NextResponse => "后续响应",
            Metric::Resolution => "解决",
            Metric::FeedbackReply => "反馈答复",
            Metric::Answer => "接听",
            Metric::Acknowledgement => "受理确认",
            Metric::PreliminaryOpinion => "初步意见",
            Metric::CorrectiveAction => "整改措施",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Metric::FirstResponse => "first_response",
            Metric::NextResponse => "next_response",
            Metric::Resolution => "resolution",
            Metric::FeedbackReply => "feedback_reply",
            Metric::Answer => "answer",
            Metric::Acknowledgement => "acknowledgement",
            Metric::PreliminaryOpinion => "preliminary_opinion",
            Metric::CorrectiveAction => "corrective_action",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Metric::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// Metrics whose clock stops while the customer holds the ball.
    pub fn pauses_on_customer(self) -> bool {
        matches!(self, Metric::Resolution | Metric::FeedbackReply)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockKind {
    /// Counts only working time of the policy's calendar.
    Business,
    /// Counts every second.
    Calendar,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricRule {
    pub metric: Metric,
    /// Length of the target, in seconds of its clock.
    pub duration_secs: i64,
    pub clock: ClockKind,
    /// Warning point as a percentage of the duration (1–99, default 80).
    #[serde(default = "default_warn")]
    pub warn_percent: u8,
    /// The answer target counted in rings (policy §3: "answer within three
    /// rings"): a call that rang more often is breached however fast it was
    /// answered; the duration is `rings × seconds_per_ring`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rings: Option<u32>,
    /// Seconds one ring lasts (default [`DEFAULT_SECONDS_PER_RING`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_per_ring: Option<u32>,
}

/// A ring cycle of a Chinese PSTN line: about one second on, four off.
pub const DEFAULT_SECONDS_PER_RING: u32 = 5;

impl MetricRule {
    /// A rule in rings: the duration follows from the ring count.
    pub fn in_rings(metric: Metric, rings: u32, seconds_per_ring: u32) -> Self {
        Self {
            metric,
            duration_secs: i64::from(rings) * i64::from(seconds_per_ring),
            clock: ClockKind::Calendar,
            warn_percent: 80,
            rings: Some(rings),
            seconds_per_ring: Some(seconds_per_ring),
        }
    }

    /// Whether a call that rang `ring_count` times missed this rule.
    pub fn rang_too_long(&self, ring_count: i64) -> bool {
        self.rings.is_some_and(|r| ring_count > i64::from(r))
    }
}

fn default_warn() -> u8 {
    80
}

/// Conditions of a policy; an empty list matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conditions {
    /// consultation, business_request, feedback, phone_contact, complaint.
    #[serde(default)]
    pub record_kinds: Vec<String>,
    #[serde(default)]
    pub channels: Vec<String>,
    #[serde(default)]
    pub categories: Vec<String>,
    #[serde(default)]
    pub priorities: Vec<String>,
    #[serde(default)]
    pub tiers: Vec<String>,
    /// Where a complaint came from: customer, regulator_referral,
    /// hotline_referral, ticket_escalation (tickets have none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub id: String,
    pub name: String,
    /// Lower positions are tried first.
    pub position: i32,
    /// The business calendar its targets count in; empty: the firm's default.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub calendar_id: String,
    #[serde(default)]
    pub conditions: Conditions,
    pub metrics: Vec<MetricRule>,
}

/// The facts of a record that policies match on.
#[derive(Debug, Clone, Default)]
pub struct Facts<'a> {
    pub record_kind: &'a str,
    pub channel: &'a str,
    pub category: &'a str,
    pub priority: &'a str,
    pub tier: &'a str,
    /// A complaint's source; empty for tickets and calls.
    pub source: &'a str,
}

fn matches(list: &[String], value: &str) -> bool {
    list.is_empty() || list.iter().any(|v| v == value)
}

impl Policy {
    pub fn matches(&self, f: &Facts<'_>) -> bool {
        let c = &self.conditions;
        matches(&c.record_kinds, f.record_kind)
            && matches(&c.channels, f.channel)
            && matches(&c.categories, f.category)
            && matches(&c.priorities, f.priority)
            && matches(&c.tiers, f.tier)
            && matches(&c.sources, f.source)
    }

    pub fn rule(&self, metric: Metric) -> Option<&MetricRule> {
        self.metrics.iter().find(|r| r.metric == metric)
    }

    /// Checks a policy a firm wrote; the message names the bad field.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.name.trim().is_empty() || self.name.chars().count() > 200 {
            return Err(("name".into(), "is required (at most 200 characters)".into()));
        }
        if self.metrics.is_empty() {
            return Err(("metrics".into(), "name at least one metric".into()));
        }
        for (i, r) in self.metrics.iter().enumerate() {
            if !(1..=366 * 24 * 3600).contains(&r.duration_secs) {
                return Err((format!("metrics[{i}].duration_seconds"), "must be between 1 second and a year".into()));
            }
            if !(1..=99).contains(&r.warn_percent) {
                return Err((format!("metrics[{i}].warn_percent"), "must be 1 to 99".into()));
            }
            if let Some(rings) = r.rings {
                if r.metric != Metric::Answer {
                    return Err((format!("metrics[{i}].rings"), "only the answer metric counts rings".into()));
                }
                if !(1..=20).contains(&rings) {
                    return Err((format!("metrics[{i}].rings"), "must be 1 to 20".into()));
                }
            }
            if let Some(s) = r.seconds_per_ring
                && !(1..=30).contains(&s)
            {
                return Err((format!("metrics[{i}].seconds_per_ring"), "must be 1 to 30".into()));
            }
            if self.metrics.iter().filter(|o| o.metric == r.metric).count() > 1 {
                return Err((format!("metrics[{i}].metric"), format!("{} appears twice", r.metric.as_str())));
            }
        }
        Ok(())
    }
}

/// Who may be told of a warning, a breach or a breach left open.
pub const NOTIFY_ROLES: &[&str] = &["assignee", "supervisor", "manager"];

/// Escalation rules (data; defaults follow SLA.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationRules {
    /// Who is notified on a warning.
    pub warning_notify: String,
    /// Who is notified on a breach.
    pub breach_notify: String,
    /// Raise the priority one level on a breach.
    pub breach_raises_priority: bool,
    /// Second level: this long (business time) after a breach…
    pub second_level_after_secs: i64,
    /// …notify them.
    pub second_level_notify: String,
}

impl Default for EscalationRules {
    fn default() -> Self {
        Self {
            warning_notify: "assignee".into(),
            breach_notify: "supervisor".into(),
            breach_raises_priority: true,
            second_level_after_secs: 2 * 3600,
            second_level_notify: "manager".into(),
        }
    }
}

impl EscalationRules {
    /// Checks rules a firm wrote: (field, message) of the first problem.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (field, v) in [
            ("warning_notify", &self.warning_notify),
            ("breach_notify", &self.breach_notify),
            ("second_level_notify", &self.second_level_notify),
        ] {
            if !NOTIFY_ROLES.contains(&v.as_str()) {
                out.push((field.to_owned(), format!("{v:?} is not one of {}", NOTIFY_ROLES.join(", "))));
            }
        }
        if !(60..=30 * 24 * 3600).contains(&self.second_level_after_secs) {
            out.push(("second_level_after_seconds".to_owned(), "must be 60 seconds to 30 days".to_owned()));
        }
        out
    }
}

/// What a service that computes deadlines in the firm's calendars needs of
/// the SLA configuration, in one piece (the tickets service owns it and
/// hands it out as this document).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConfigDocument {
    /// Version of what due times are computed from (calendars, policies).
    pub version: i64,
    pub default_calendar: String,
    pub calendars: Vec<crate::CalendarSpec>,
    pub policies: Vec<Policy>,
    #[serde(default)]
    pub escalation: EscalationRules,
}

/// The first matching policy in position order.
pub fn first_match<'p>(policies: &'p [Policy], facts: &Facts<'_>) -> Option<&'p Policy> {
    let mut sorted: Vec<&Policy> = policies.iter().collect();
    sorted.sort_by_key(|p| p.position);
    sorted.into_iter().find(|p| p.matches(facts))
}

fn rule(metric: Metric, duration_secs: i64, clock: ClockKind) -> MetricRule {
    MetricRule { metric, duration_secs, clock, warn_percent: 80, rings: None, seconds_per_ring: None }
}

/// SLA.md's defaults; a firm edits them.
pub fn default_policies(cal: &Calendar) -> Vec<Policy> {
    let hour = 3600;
    let day = cal.business_day().num_seconds().max(hour);
    let strs = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    use ClockKind::Business;
    use Metric::*;
    vec![
        Policy {
            id: "default-phone".into(),
            name: "Phone: answer within three rings".into(),
            position: 10,
            calendar_id: String::new(),
            conditions: Conditions { record_kinds: strs(&["phone_contact"]), ..Default::default() },
            metrics: vec![MetricRule::in_rings(Answer, 3, DEFAULT_SECONDS_PER_RING)],
        },
        Policy {
            id: "default-complaint".into(),
            name: "Complaints".into(),
            position: 20,
            calendar_id: String::new(),
            conditions: Conditions { record_kinds: strs(&["complaint"]), ..Default::default() },
            metrics: vec![
                rule(Acknowledgement, hour, Business),
                rule(PreliminaryOpinion, day, Business),
                rule(Resolution, 7 * day, Business),
            ],
        },
        Policy {
            id: "default-feedback".into(),
            name: "Feedback".into(),
            position: 30,
            calendar_id: String::new(),
            conditions: Conditions { record_kinds: strs(&["feedback"]), ..Default::default() },
            metrics: vec![rule(FirstResponse, 4 * hour, Business), rule(FeedbackReply, 3 * day, Business)],
        },
        Policy {
            id: "default-chat".into(),
            name: "Online chat and WeChat".into(),
            position: 40,
            calendar_id: String::new(),
            conditions: Conditions { channels: strs(&["online_chat", "wechat"]), ..Default::default() },
            metrics: vec![
                rule(FirstResponse, 60, Business),
                rule(NextResponse, 60, Business),
                rule(Resolution, 2 * day, Business),
            ],
        },
        Policy {
            id: "default".into(),
            name: "Consultations and business requests".into(),
            position: 100,
            calendar_id: String::new(),
            conditions: Conditions::default(),
            metrics: vec![
                rule(FirstResponse, 4 * hour, Business),
                rule(NextResponse, 4 * hour, Business),
                rule(Resolution, 2 * day, Business),
            ],
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_match_follows_position_and_conditions() {
        let cal = Calendar::china_default().unwrap();
        let p = default_policies(&cal);
        let f = |kind: &'static str, channel: &'static str| Facts { record_kind: kind, channel, ..Default::default() };
        assert_eq!(first_match(&p, &f("consultation", "email")).unwrap().id, "default");
        assert_eq!(first_match(&p, &f("consultation", "online_chat")).unwrap().id, "default-chat");
        assert_eq!(first_match(&p, &f("feedback", "online_chat")).unwrap().id, "default-feedback");
        assert_eq!(first_match(&p, &f("phone_contact", "phone")).unwrap().id, "default-phone");
        let phone = first_match(&p, &f("phone_contact", "phone")).unwrap().rule(Metric::Answer).unwrap();
        assert_eq!((phone.rings, phone.duration_secs), (Some(3), 15), "three rings of five seconds");
        assert!(phone.rang_too_long(4) && !phone.rang_too_long(3));
        let email = first_match(&p, &f("consultation", "email")).unwrap();
        assert_eq!(email.rule(Metric::FirstResponse).unwrap().duration_secs, 4 * 3600);
        assert_eq!(email.rule(Metric::Resolution).unwrap().duration_secs, 2 * 8 * 3600, "two 8-hour business days");
    }

    #[test]
    fn validation_names_the_field() {
        let mut p = default_policies(&Calendar::always_open()).remove(0);
        p.metrics[0].rings = Some(0);
        assert_eq!(p.validate().unwrap_err().0, "metrics[0].rings");
        p.metrics[0].rings = Some(3);
        p.metrics[0].warn_percent = 100;
        assert_eq!(p.validate().unwrap_err().0, "metrics[0].warn_percent");
        p.metrics[0].warn_percent = 80;
        p.metrics[0].duration_secs = 0;
        assert_eq!(p.validate().unwrap_err().0, "metrics[0].duration_seconds");
    }
}
