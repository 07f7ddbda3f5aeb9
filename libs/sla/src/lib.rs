//! kefu's SLA engine: business calendars, policies, targets and their
//! states, the live state store (Redis or memory) and the sweeper that turns
//! due times into events exactly once.
#![forbid(unsafe_code)]

pub mod args;
pub mod calendar;
pub mod clock;
pub mod live;
pub mod policy;
pub mod redis_live;
pub mod store;
pub mod sweeper;
pub mod target;
pub mod watch;
pub mod writer;

pub use calendar::{Calendar, CalendarError, CalendarSpec, DayNote, HolidaySpec, MakeupSpec};
pub use clock::{Clock, ManualClock, SystemClock};
pub use live::{Claimed, Dashboard, DueKind, GroupCounts, LiveEntry, LiveStore, MemoryLiveStore, RecordChange};
pub use policy::{ClockKind, Conditions, ConfigDocument, EscalationRules, Facts, Metric, MetricRule, Policy};
pub use redis_live::RedisLiveStore;
pub use sweeper::{DueHandler, Sweeper, SweeperConfig};
pub use target::{EventKind, SlaEvent, Target, TargetKey, TargetState};
pub use writer::{Changes, LiveWriter};
