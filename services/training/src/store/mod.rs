//! All SQL of the training service (portable: SQLite and PostgreSQL), one
//! module per table group. Rows come back as the row types; JSON columns
//! (materials, goals, planned courses, option lists) are read into their
//! types here.
mod careers;
mod certificates;
mod courses;
mod effect;
mod enrolments;
mod exams;
mod plans;
mod sessions;

pub use careers::*;
pub use certificates::*;
pub use courses::*;
pub use effect::*;
pub use enrolments::*;
pub use exams::*;
pub use plans::*;
pub use sessions::*;

/// JSON columns, read and written once (the kit's).
pub use kefu_kit::db::{from_json as json, to_json};
