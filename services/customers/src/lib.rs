//! The kefu customers service: customer profiles of a finance & tax firm,
//! contacts, the encrypted tax and financial profile, consents and
//! data-subject rights, a hash-chained audit trail, follow-up visits and
//! holiday greetings.
#![forbid(unsafe_code)]

pub mod api;
pub mod crypto;
pub mod domain;
pub mod store;

use clap::Args;
use kefu_proto::customers::v1::customer_service_server::CustomerServiceServer;
use sqlx::AnyPool;

pub use api::{ACCESS, CustomersApi, Settings};
pub use crypto::DataKeyring;

/// The service's schema migrations (portable SQL).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Settings of `kefu serve customers` beyond the common ones.
#[derive(Debug, Clone, Args)]
pub struct CustomersArgs {
    /// Data keys for encryption at rest: `KID:BASE64URL[,...]`; the first
    /// encrypts, all decrypt (rotation).
    #[arg(long, env = "KEFU_DATA_KEYS", hide_env_values = true)]
    pub data_keys: String,
    /// Follow-up visit cycle for new plans, in days.
    #[arg(long, env = "KEFU_FOLLOW_UP_CYCLE_DAYS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=366))]
    pub follow_up_cycle_days: u32,
}

impl CustomersArgs {
    pub fn settings(&self) -> Settings {
        Settings { follow_up_cycle_days: self.follow_up_cycle_days }
    }

    pub fn keyring(&self) -> anyhow::Result<DataKeyring> {
        DataKeyring::new(&kefu_kit::config::parse_data_keys(&self.data_keys)?)
    }
}

/// The tonic service, ready to add to a server.
pub fn service(pool: AnyPool, keys: DataKeyring, settings: Settings) -> CustomerServiceServer<CustomersApi> {
    CustomerServiceServer::new(CustomersApi::new(pool, keys, settings))
}
