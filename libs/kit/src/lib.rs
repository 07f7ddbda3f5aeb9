//! kefu's shared runtime. Every service is built from these parts so that
//! configuration, identity, errors, telemetry, storage and shutdown behave
//! the same everywhere.
#![forbid(unsafe_code)]

pub mod auth;
pub mod client;
pub mod config;
pub mod db;
pub mod error;
pub mod keys;
pub mod observe;
pub mod server;
pub mod shutdown;
pub mod telemetry;

pub use error::{Error, FieldViolation};
