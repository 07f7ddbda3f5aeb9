//! kefu's SLA engine: business calendars, policies, targets and their
//! states, the live state store (Redis or memory) and the sweeper that turns
//! due times into events exactly once.
#![forbid(unsafe_code)]

pub mod calendar;

pub use calendar::{Calendar, CalendarError, CalendarSpec};
