//! kefu's shared runtime. Every service is built from these parts so that
//! configuration, identity, errors, telemetry, storage and shutdown behave
//! the same everywhere.
#![forbid(unsafe_code)]

pub mod access;
pub mod approval;
pub mod audit;
pub mod auth;
pub mod blob;
pub mod channel;
pub mod client;
pub mod config;
pub mod db;
pub mod directory;
pub mod erasure;
pub mod error;
pub mod etag;
pub mod keys;
pub mod mask;
pub mod module;
pub mod money;
pub mod observe;
pub mod page;
pub mod parse;
pub mod rpc;
pub mod server;
pub mod shutdown;
pub mod taxonomy;
pub mod telemetry;
pub mod tls;

pub use error::{Error, FieldViolation};

/// What a handler returns.
pub type Result<T, E = Error> = std::result::Result<T, E>;
