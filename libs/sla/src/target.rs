//! One SLA timer on one record: how much of its clock is used, when it falls
//! due and warns, whether it is paused, breached or fulfilled. Pure: callers
//! pass the instant (`now`, Unix ms) and the calendar.
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    calendar::{Calendar, CalendarError},
    policy::{ClockKind, Metric, MetricRule},
};

pub fn to_dt(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Identifies a target across its life: record, metric and cycle (a
/// reopened ticket or a new unanswered customer message starts a new cycle).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TargetKey {
    pub record_id: String,
    pub metric: Metric,
    pub cycle: i64,
}

impl TargetKey {
    /// `record|metric|cycle`, the member name in the live store.
    pub fn member(&self) -> String {
        format!("{}|{}|{}", self.record_id, self.metric.as_str(), self.cycle)
    }

    pub fn parse_member(s: &str) -> Option<Self> {
        let mut it = s.rsplitn(3, '|');
        let cycle = it.next()?.parse().ok()?;
        let metric = Metric::parse(it.next()?)?;
        let record_id = it.next()?.to_owned();
        Some(Self { record_id, metric, cycle })
    }

    /// A stable event id: consumers de-duplicate on it.
    pub fn event_id(&self, kind: EventKind) -> String {
        format!("{}:{}:{}:{}", self.record_id, self.metric.as_str(), self.cycle, kind.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetState {
    Active,
    Warning,
    Breached,
    Paused,
    Fulfilled,
    FulfilledLate,
}

impl TargetState {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetState::Active => "active",
            TargetState::Warning => "warning",
            TargetState::Breached => "breached",
            TargetState::Paused => "paused",
            TargetState::Fulfilled => "fulfilled",
            TargetState::FulfilledLate => "fulfilled_late",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Warning,
    Breached,
    Fulfilled,
    Paused,
    Resumed,
    /// A breached target still open at the second escalation level.
    Escalated,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Warning => "warning",
            EventKind::Breached => "breached",
            EventKind::Fulfilled => "fulfilled",
            EventKind::Paused => "paused",
            EventKind::Resumed => "resumed",
            EventKind::Escalated => "escalated",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            EventKind::Warning,
            EventKind::Breached,
            EventKind::Fulfilled,
            EventKind::Paused,
            EventKind::Resumed,
            EventKind::Escalated,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// What a transition emits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaEvent {
    pub id: String,
    pub key: TargetKey,
    pub kind: EventKind,
    pub at_ms: i64,
    pub due_at_ms: Option<i64>,
    /// Queue and assignee of the record when it happened (for routing).
    #[serde(default)]
    pub queue: String,
    #[serde(default)]
    pub assignee: String,
}

impl SlaEvent {
    /// The event routed to `queue` and `assignee` (who is told).
    #[must_use]
    pub fn routed(mut self, queue: &str, assignee: &str) -> Self {
        self.queue = queue.to_owned();
        self.assignee = assignee.to_owned();
        self
    }
}

/// The durable state of a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub key: TargetKey,
    pub clock: ClockKind,
    pub duration_ms: i64,
    pub warn_percent: u8,
    pub started_at: i64,
    /// Clock time used before `running_since` (earlier running spans).
    pub consumed_ms: i64,
    /// Running since this instant; `None` while paused or finished.
    pub running_since: Option<i64>,
    /// Latest allowed due time regardless of policy (filing deadlines).
    pub cap_at: Option<i64>,
    pub due_at: Option<i64>,
    pub warn_at: Option<i64>,
    pub warned_at: Option<i64>,
    pub breached_at: Option<i64>,
    pub fulfilled_at: Option<i64>,
}

impl Target {
    /// Starts a target at `now` under `rule`.
    pub fn start(
        key: TargetKey,
        rule: &MetricRule,
        now: i64,
        cap_at: Option<i64>,
        cal: &Calendar,
    ) -> Result<Self, CalendarError> {
        let mut t = Self {
            key,
            clock: rule.clock,
            duration_ms: rule.duration_secs.saturating_mul(1000),
            warn_percent: rule.warn_percent,
            started_at: now,
            consumed_ms: 0,
            running_since: Some(now),
            cap_at,
            due_at: None,
            warn_at: None,
            warned_at: None,
            breached_at: None,
            fulfilled_at: None,
        };
        t.recompute(cal)?;
        Ok(t)
    }

    pub fn is_finished(&self) -> bool {
        self.fulfilled_at.is_some()
    }

    pub fn is_paused(&self) -> bool {
        self.running_since.is_none() && !self.is_finished()
    }

    pub fn state(&self) -> TargetState {
        if self.fulfilled_at.is_some() {
            if self.breached_at.is_some() { TargetState::FulfilledLate } else { TargetState::Fulfilled }
        } else if self.breached_at.is_some() {
            TargetState::Breached
        } else if self.running_since.is_none() {
            TargetState::Paused
        } else if self.warned_at.is_some() {
            TargetState::Warning
        } else {
            TargetState::Active
        }
    }

    fn elapsed(&self, from: i64, to: i64, cal: &Calendar) -> i64 {
        if to <= from {
            return 0;
        }
        match self.clock {
            ClockKind::Calendar => to - from,
            ClockKind::Business => cal.business_between(to_dt(from), to_dt(to)).num_milliseconds(),
        }
    }

    fn advance(&self, from: i64, by_ms: i64, cal: &Calendar) -> Result<i64, CalendarError> {
        let by_ms = by_ms.max(0);
        match self.clock {
            ClockKind::Calendar => Ok(from.saturating_add(by_ms)),
            ClockKind::Business => Ok(cal.add(to_dt(from), Duration::milliseconds(by_ms))?.timestamp_millis()),
        }
    }

    /// Clock time used up to `now`.
    pub fn used_ms(&self, now: i64, cal: &Calendar) -> i64 {
        self.consumed_ms + self.running_since.map_or(0, |r| self.elapsed(r, now, cal))
    }

    /// Recomputes due and warning instants from the current run.
    pub fn recompute(&mut self, cal: &Calendar) -> Result<(), CalendarError> {
        let Some(since) = self.running_since else {
            self.due_at = None;
            self.warn_at = None;
            return Ok(());
        };
        let mut due = self.advance(since, self.duration_ms - self.consumed_ms, cal)?;
        let warn_point = self.duration_ms * i64::from(self.warn_percent) / 100;
        let mut warn = if self.warned_at.is_none() {
            Some(self.advance(since, warn_point - self.consumed_ms, cal)?)
        } else {
            None
        };
        if let Some(cap) = self.cap_at
            && cap < due
        {
            due = cap.max(since);
            // Warn the same share of the duration before the capped due time.
            let lead = self.duration_ms - warn_point;
            let capped_warn = match self.clock {
                ClockKind::Calendar => due - lead,
                ClockKind::Business => cal.sub(to_dt(due), Duration::milliseconds(lead))?.timestamp_millis(),
            };
            warn = warn.map(|w| w.min(capped_warn.max(since)));
        }
        self.due_at = Some(due);
        self.warn_at = warn.filter(|w| *w < due);
        Ok(())
    }

    /// Milliseconds of its clock left (negative when overdue); `None` when finished.
    pub fn remaining_ms(&self, now: i64, cal: &Calendar) -> Option<i64> {
        if self.is_finished() {
            return None;
        }
        let due = self.due_at?;
        Some(if now <= due { self.elapsed(now, due, cal) } else { -self.elapsed(due, now, cal) })
    }

    fn event(&self, kind: EventKind, at: i64) -> SlaEvent {
        // A cycle can pause and resume many times: those events carry the
        // clock time used so far, which is the same on every retry.
        let id = match kind {
            EventKind::Paused | EventKind::Resumed => format!("{}@{}", self.key.event_id(kind), self.consumed_ms),
            _ => self.key.event_id(kind),
        };
        SlaEvent {
            id,
            key: self.key.clone(),
            kind,
            at_ms: at,
            due_at_ms: self.due_at,
            queue: String::new(),
            assignee: String::new(),
        }
    }

    pub fn pause(&mut self, now: i64, cal: &Calendar) -> Result<Option<SlaEvent>, CalendarError> {
        let Some(since) = self.running_since else {
            return Ok(None);
        };
        if self.is_finished() {
            return Ok(None);
        }
        self.consumed_ms += self.elapsed(since, now, cal);
        self.running_since = None;
        self.recompute(cal)?;
        Ok(Some(self.event(EventKind::Paused, now)))
    }

    pub fn resume(&mut self, now: i64, cal: &Calendar) -> Result<Option<SlaEvent>, CalendarError> {
        if !self.is_paused() {
            return Ok(None);
        }
        self.running_since = Some(now);
        self.recompute(cal)?;
        Ok(Some(self.event(EventKind::Resumed, now)))
    }

    /// Stops the target: met, or met late after a breach.
    pub fn fulfil(&mut self, now: i64, cal: &Calendar) -> Result<Option<SlaEvent>, CalendarError> {
        if self.is_finished() {
            return Ok(None);
        }
        if let Some(since) = self.running_since {
            self.consumed_ms += self.elapsed(since, now, cal);
        }
        // A due time already passed counts as breached even if the sweeper
        // has not got to it yet.
        if self.breached_at.is_none()
            && let Some(due) = self.due_at
            && now > due
        {
            self.breached_at = Some(due);
        }
        self.running_since = None;
        self.fulfilled_at = Some(now);
        let ev = self.event(EventKind::Fulfilled, now);
        self.due_at = None;
        self.warn_at = None;
        Ok(Some(ev))
    }

    /// Books the clock time used up to `now`, measured in `cal` (the
    /// calendar it ran in), and runs on from `now`: before the target is
    /// recomputed under another calendar, time already used stays used.
    pub fn settle(&mut self, now: i64, cal: &Calendar) -> Result<(), CalendarError> {
        if self.is_finished() || self.breached_at.is_some() {
            return Ok(());
        }
        if let Some(since) = self.running_since
            && now > since
        {
            self.consumed_ms += self.elapsed(since, now, cal);
            self.running_since = Some(now);
        }
        Ok(())
    }

    /// A new policy rule (priority, category or channel changed): elapsed
    /// time is kept, due times follow the new duration.
    pub fn rematch(&mut self, rule: &MetricRule, now: i64, cal: &Calendar) -> Result<(), CalendarError> {
        // A breach is history: its due time stays what it was.
        if self.is_finished() || self.breached_at.is_some() {
            return Ok(());
        }
        if let Some(since) = self.running_since {
            self.consumed_ms += self.elapsed(since, now, cal);
            self.running_since = Some(now);
        }
        self.duration_ms = rule.duration_secs.saturating_mul(1000);
        self.warn_percent = rule.warn_percent;
        self.clock = rule.clock;
        self.recompute(cal)
    }

    /// The sweeper found the warning point passed.
    pub fn mark_warned(&mut self, now: i64) -> Option<SlaEvent> {
        if self.is_finished() || self.warned_at.is_some() || self.breached_at.is_some() || self.running_since.is_none()
        {
            return None;
        }
        match self.warn_at {
            Some(w) if w <= now => {
                self.warned_at = Some(now);
                self.warn_at = None;
                Some(self.event(EventKind::Warning, now))
            }
            _ => None,
        }
    }

    /// The sweeper found the due time passed before fulfilment.
    pub fn mark_breached(&mut self, now: i64) -> Option<SlaEvent> {
        if self.is_finished() || self.breached_at.is_some() || self.running_since.is_none() {
            return None;
        }
        match self.due_at {
            Some(d) if d <= now => {
                self.breached_at = Some(d);
                self.warn_at = None;
                Some(self.event(EventKind::Breached, now))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cal() -> Calendar {
        Calendar::china_default().unwrap()
    }

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
        chrono_tz::Asia::Shanghai.with_ymd_and_hms(y, m, d, h, min, 0).unwrap().timestamp_millis()
    }

    fn key() -> TargetKey {
        TargetKey { record_id: "t1".into(), metric: Metric::Resolution, cycle: 1 }
    }

    fn rule(secs: i64) -> MetricRule {
        MetricRule {
            metric: Metric::Resolution,
            duration_secs: secs,
            clock: ClockKind::Business,
            warn_percent: 80,
            rings: None,
            seconds_per_ring: None,
        }
    }

    #[test]
    fn warns_then_breaches_then_fulfils_late() {
        let c = cal();
        let start = at(2026, 3, 2, 9, 0);
        let mut t = Target::start(key(), &rule(10 * 3600), start, None, &c).unwrap();
        assert_eq!(t.due_at, Some(at(2026, 3, 3, 11, 0)));
        assert_eq!(t.warn_at, Some(at(2026, 3, 2, 18, 0)), "8h in: close of Monday");
        assert!(t.mark_warned(at(2026, 3, 2, 17, 0)).is_none(), "not yet");
        let w = t.mark_warned(at(2026, 3, 3, 9, 1)).unwrap();
        assert_eq!(w.id, "t1:resolution:1:warning");
        assert!(t.mark_warned(at(2026, 3, 3, 9, 2)).is_none(), "once");
        assert_eq!(t.state(), TargetState::Warning);
        assert!(t.mark_breached(at(2026, 3, 3, 11, 5)).is_some());
        assert!(t.mark_breached(at(2026, 3, 3, 11, 6)).is_none(), "exactly once");
        t.fulfil(at(2026, 3, 3, 12, 0), &c).unwrap();
        assert_eq!(t.state(), TargetState::FulfilledLate);
        assert!(t.fulfil(at(2026, 3, 3, 12, 1), &c).unwrap().is_none());
    }

    #[test]
    fn pause_stops_the_clock_and_resume_moves_the_due_time() {
        let c = cal();
        let mut t = Target::start(key(), &rule(4 * 3600), at(2026, 3, 2, 9, 0), None, &c).unwrap();
        assert_eq!(t.due_at, Some(at(2026, 3, 2, 14, 0)));
        t.pause(at(2026, 3, 2, 10, 0), &c).unwrap();
        assert_eq!(t.state(), TargetState::Paused);
        assert_eq!(t.due_at, None);
        assert!(t.mark_breached(at(2026, 3, 9, 9, 0)).is_none(), "a paused target cannot breach");
        // Resumed the next morning: 3 business hours left.
        t.resume(at(2026, 3, 3, 9, 0), &c).unwrap();
        assert_eq!(t.due_at, Some(at(2026, 3, 3, 12, 0)), "09:00 + 3h ends the morning at 12:00");
    }

    #[test]
    fn rematch_keeps_elapsed_time() {
        let c = cal();
        let mut t = Target::start(key(), &rule(16 * 3600), at(2026, 3, 2, 9, 0), None, &c).unwrap();
        t.rematch(&rule(4 * 3600), at(2026, 3, 2, 11, 0), &c).unwrap();
        assert_eq!(t.due_at, Some(at(2026, 3, 2, 14, 0)), "2h used, 2h left: 11:00→12:00, 13:00→14:00");
    }

    #[test]
    fn a_cap_bounds_the_due_time_and_pulls_the_warning_forward() {
        let c = cal();
        let cap = at(2026, 10, 23, 18, 0);
        let t = Target::start(key(), &rule(16 * 3600), at(2026, 10, 23, 9, 0), Some(cap), &c).unwrap();
        assert_eq!(t.due_at, Some(cap));
        let w = t.warn_at.unwrap();
        assert!(w < cap && w >= at(2026, 10, 23, 9, 0));
    }

    #[test]
    fn members_round_trip() {
        let k = TargetKey { record_id: "a|b".into(), metric: Metric::NextResponse, cycle: 3 };
        assert_eq!(TargetKey::parse_member(&k.member()), Some(k));
        assert_eq!(TargetKey::parse_member("garbage"), None);
    }
}
