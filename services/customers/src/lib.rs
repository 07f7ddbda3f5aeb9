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
use kefu_kit::module::{Built, Context, Module};
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
    /// Required by `kefu serve customers`; `kefu up` keeps its own under the
    /// data directory.
    #[arg(long, env = "KEFU_DATA_KEYS", hide_env_values = true)]
    pub data_keys: Option<String>,
    /// Follow-up visit cycle for new plans, in days.
    #[arg(long, env = "KEFU_FOLLOW_UP_CYCLE_DAYS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=366))]
    pub follow_up_cycle_days: u32,
    #[command(flatten)]
    pub audit: kefu_kit::audit::AuditArgs,
}

impl CustomersArgs {
    pub fn settings(&self) -> Settings {
        Settings { follow_up_cycle_days: self.follow_up_cycle_days }
    }

    /// The keyring from `KEFU_DATA_KEYS`.
    pub fn keyring(&self) -> anyhow::Result<DataKeyring> {
        let text = self
            .data_keys
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("set KEFU_DATA_KEYS (--data-keys): `kefu admin keygen data` makes one"))?;
        DataKeyring::new(&kefu_kit::config::parse_data_keys(text)?)
    }
}

/// The customers service as a kefu [`Module`].
pub struct Customers;

impl Module for Customers {
    const NAME: &'static str = "customers";
    type Args = CustomersArgs;

    fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    fn access() -> &'static [&'static kefu_kit::access::Access] {
        static TABLES: [&kefu_kit::access::Access; 1] = [&ACCESS];
        &TABLES
    }

    fn check(args: &CustomersArgs, embedded: bool) -> anyhow::Result<()> {
        // Embedded hosts bring their own keys; a given key must still parse.
        match &args.data_keys {
            None if embedded => Ok(()),
            _ => args.keyring().map(drop),
        }?;
        args.audit.check(embedded)
    }

    async fn build(args: CustomersArgs, ctx: Context) -> anyhow::Result<Built> {
        let keyring = match (&ctx.embedded, &args.data_keys) {
            (Some(embedded), None) => {
                DataKeyring::new(&kefu_kit::config::parse_data_keys(&embedded.key_file("data.keys")?)?)?
            }
            _ => args.keyring()?,
        };
        let audit_keys = args.audit.keys(ctx.embedded.as_ref())?;
        kefu_kit::audit::sign_unsigned(&ctx.pool, &audit_keys).await?;
        // "Name contains" searches through an index on PostgreSQL.
        kefu_kit::db::ensure_trigram_index(&ctx.pool, "customers", "company_name_lower").await?;
        let svc = service(ctx.pool.clone(), keyring, audit_keys, args.settings());
        let checkpoints = kefu_kit::audit::checkpoints(
            "customers",
            ctx.pool,
            args.audit.audit_checkpoint_every,
            ctx.shutdown.clone(),
        );
        let mut built = Built::services(kefu_kit::server::ServerBuilder::new().add_service(svc, &ACCESS));
        built.tasks.push(Box::pin(checkpoints));
        Ok(built)
    }
}

/// The tonic service, ready to add to a server.
pub fn service(
    pool: AnyPool,
    keys: DataKeyring,
    audit_keys: kefu_kit::audit::AuditKeys,
    settings: Settings,
) -> CustomerServiceServer<CustomersApi> {
    CustomerServiceServer::new(CustomersApi::new(pool, keys, audit_keys, settings))
}
