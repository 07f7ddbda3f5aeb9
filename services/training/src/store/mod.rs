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

/// A JSON column read into its type.
pub fn json<T: serde::de::DeserializeOwned>(table: &str, id: &str, text: &str) -> Result<T, kefu_kit::Error> {
    serde_json::from_str(text)
        .map_err(|e| kefu_kit::Error::Internal(anyhow::anyhow!("{table} {id} holds invalid JSON: {e}")))
}

/// A value as its JSON column text.
pub fn to_json<T: serde::Serialize>(x: &T) -> Result<String, kefu_kit::Error> {
    serde_json::to_string(x).map_err(|e| kefu_kit::Error::Internal(e.into()))
}
