//! SQL for the tickets service (portable: SQLite and PostgreSQL). No other
//! module writes SQL: handlers call these functions with domain values.
mod config;
mod contacts;
mod settings;
mod stats;
mod targets;
mod tickets;

pub use config::*;
pub use contacts::*;
pub use kefu_sla::store::*;
pub use settings::*;
pub use stats::*;
pub use targets::*;
pub use tickets::*;
