//! The one shape every kefu service has inside a process.
//!
//! A service crate implements [`Module`]: its name, its migrations, its
//! settings (the flags of `kefu serve NAME`), the services it calls, and one
//! `build` that turns a database pool and those settings into gRPC services
//! (with their access tables), background tasks and a handle. Every host uses
//! that same `build`:
//!
//! - `kefu serve NAME` through [`serve`], on its own database and Redis;
//! - `kefu up` and the test kit through [`build_all`], several modules on one
//!   server with embedded storage ([`Embedded`]);
//! - `kefu migrate` through [`AnyModule::migrator`].
//!
//! The registry of modules lives in `kefu-suite`; adding a service is adding
//! one line there.
use std::{
    any::Any,
    future::Future,
    marker::PhantomData,
    path::{Path, PathBuf},
    pin::Pin,
};

use clap::{Args, FromArgMatches};
use sqlx::{AnyPool, migrate::Migrator};
use tokio_util::sync::CancellationToken;

use crate::{
    access::Access,
    config::{AuthArgs, DatabaseArgs, ServerArgs, TelemetryArgs},
    server::ServerBuilder,
};

/// A background task (a sweeper, a poller); it returns when the host's
/// shutdown token is cancelled. Hosts add one of their own per module: the
/// kit's request-id janitor ([`crate::db::request_id_janitor`]).
pub type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What a service hands back to its host.
pub struct Built {
    /// Its gRPC services, each with its access table.
    pub services: ServerBuilder,
    /// Loops the host runs beside the server and awaits after it drains.
    pub tasks: Vec<Task>,
    /// What an embedding program may reach into (the tickets sweeper, for
    /// tests); `()` when there is nothing.
    pub handle: Box<dyn Any + Send + Sync>,
    /// Run once the server has drained, before the process exits (hand over
    /// what is still queued).
    pub finally: Vec<Task>,
}

impl Built {
    /// A module with only gRPC services.
    pub fn services(services: ServerBuilder) -> Self {
        Self { services, tasks: Vec::new(), handle: Box::new(()), finally: Vec::new() }
    }
}

/// The all-in-one host (`kefu up`, tests): every module on one gRPC address,
/// embedded storage, keys under a data directory.
#[derive(Clone, Default)]
pub struct Embedded {
    /// Where keys and databases live.
    pub data_dir: PathBuf,
    /// `http://host:port` of the shared gRPC server: every peer is here.
    pub self_addr: String,
    /// Values a module may take instead of its own (a test's manual clock or
    /// live store), looked up by type.
    pub overrides: http::Extensions,
    /// Mints a service-role token for a module's own calls to its peers
    /// (the host holds the signing key).
    pub service_token: Option<ServiceTokens>,
}

/// Mints a service-role token on each call.
pub type ServiceTokens = std::sync::Arc<dyn Fn() -> anyhow::Result<String> + Send + Sync>;

/// The file of a service's own service-role token, for calls it makes on
/// its own behalf (following erasures, reading other services' figures).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServiceTokenArgs {
    /// File holding a service-role token (`kefu admin token --role
    /// service`); read at each use, so a rotated Secret takes effect.
    /// Required by `kefu serve` for services that call others on their own.
    #[arg(long, env = "KEFU_SERVICE_TOKEN_FILE")]
    pub service_token_file: Option<std::path::PathBuf>,
}

impl ServiceTokenArgs {
    /// The token source (read once now, to fail at start when it cannot
    /// be); `so_that` says what it is for in the error.
    pub fn source(&self, so_that: &str) -> anyhow::Result<ServiceTokens> {
        let path = self.service_token_file.clone().ok_or_else(|| {
            anyhow::anyhow!(
                "set KEFU_SERVICE_TOKEN_FILE (--service-token-file) to a file with a service token, so that {so_that}"
            )
        })?;
        let read = move || -> anyhow::Result<String> {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| anyhow::anyhow!("cannot read KEFU_SERVICE_TOKEN_FILE {}: {e}", path.display()))?;
            Ok(text.trim().to_owned())
        };
        read()?;
        Ok(std::sync::Arc::new(read))
    }
}

/// Short-lived service-role tokens for `subject` from a host's signing key.
pub fn service_tokens(signer: std::sync::Arc<crate::auth::TokenSigner>, subject: &str) -> ServiceTokens {
    let subject = subject.to_owned();
    std::sync::Arc::new(move || {
        signer.mint(&subject, &[crate::auth::Role::Service], std::time::Duration::from_secs(300))
    })
}

impl Embedded {
    /// The override of type `T`, if the host gave one.
    pub fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.overrides.get::<T>().cloned()
    }

    /// A key file under the data directory, created on first use.
    pub fn key_file(&self, name: &str) -> anyhow::Result<String> {
        crate::keys::load_or_create(&self.data_dir.join("keys").join(name), "up")
    }
}

/// What a host gives a module to build on.
pub struct Context {
    /// The module's own database, migrated.
    pub pool: AnyPool,
    /// This process among the replicas (host name and pid), for leases.
    pub instance: String,
    /// Cancelled when the process begins to shut down.
    pub shutdown: CancellationToken,
    /// Set when hosted all-in-one; `None` under `kefu serve`.
    pub embedded: Option<Embedded>,
}

/// A kefu service.
pub trait Module: Send + Sync + 'static {
    /// `kefu serve NAME`, `kefu migrate NAME`, `KEFU_NAME_DATABASE_URL`,
    /// `NAME.db` under `kefu up`'s data directory.
    const NAME: &'static str;
    /// Services this one calls (the call graph in `ARCHITECTURE.md`).
    const CALLS: &'static [&'static str] = &[];
    /// Settings beyond the common ones: the flags of `kefu serve NAME`;
    /// `kefu up` reads the same settings from the environment.
    type Args: Args + FromArgMatches + Clone + Send + Sync + 'static;

    fn migrator() -> &'static Migrator;

    /// The access tables of the gRPC services it serves.
    fn access() -> &'static [&'static Access];

    /// Checks settings before anything touches the network; `embedded` when
    /// hosted all-in-one (which brings its own keys and stores).
    fn check(_args: &Self::Args, _embedded: bool) -> anyhow::Result<()> {
        Ok(())
    }

    fn build(args: Self::Args, ctx: Context) -> impl Future<Output = anyhow::Result<Built>> + Send;
}

/// A [`Module`] seen without its types, for lists of modules.
pub trait AnyModule: Send + Sync {
    fn name(&self) -> &'static str;
    fn calls(&self) -> &'static [&'static str];
    fn migrator(&self) -> &'static Migrator;
    fn access(&self) -> &'static [&'static Access];
    /// Builds with settings read from the environment (as `kefu up` does).
    fn build_from_env(&self, ctx: Context) -> Pin<Box<dyn Future<Output = anyhow::Result<Built>> + Send + '_>>;
}

/// The [`AnyModule`] of `M`: `&Of::<M>::NEW`.
pub struct Of<M>(PhantomData<fn() -> M>);

impl<M> Of<M> {
    pub const NEW: Self = Self(PhantomData);
}

impl<M: Module> AnyModule for Of<M> {
    fn name(&self) -> &'static str {
        M::NAME
    }

    fn calls(&self) -> &'static [&'static str] {
        M::CALLS
    }

    fn migrator(&self) -> &'static Migrator {
        M::migrator()
    }

    fn access(&self) -> &'static [&'static Access] {
        M::access()
    }

    fn build_from_env(&self, ctx: Context) -> Pin<Box<dyn Future<Output = anyhow::Result<Built>> + Send + '_>> {
        Box::pin(async move {
            let args = settings_from_env::<M>()?;
            M::check(&args, true)?;
            M::build(args, ctx).await
        })
    }
}

/// A module's settings from the environment and defaults, as `kefu serve
/// NAME` would read them with no flags.
pub fn settings_from_env<M: Module>() -> anyhow::Result<M::Args> {
    let cmd = M::Args::augment_args(clap::Command::new(M::NAME).no_binary_name(true));
    let matches = cmd
        .try_get_matches_from(Vec::<String>::new())
        .map_err(|e| anyhow::anyhow!("settings of {}: {}", M::NAME, e.render()))?;
    M::Args::from_arg_matches(&matches).map_err(|e| anyhow::anyhow!("settings of {}: {}", M::NAME, e.render()))
}

/// The environment variable naming a module's database for `kefu migrate all`.
pub fn database_env(name: &str) -> String {
    format!("KEFU_{}_DATABASE_URL", name.to_ascii_uppercase())
}

/// `sqlite://DIR/NAME.db`: a module's database under `kefu up`.
pub fn embedded_database(data_dir: &Path, name: &str) -> String {
    format!("sqlite://{}", data_dir.join(format!("{name}.db")).display())
}

/// This process among replicas: `$HOSTNAME-pid`.
pub fn instance_name() -> String {
    format!("{}-{}", std::env::var("HOSTNAME").unwrap_or_else(|_| "kefu".into()), std::process::id())
}

/// Several modules built for one all-in-one server.
pub struct Assembly {
    pub services: ServerBuilder,
    pub tasks: Vec<Task>,
    /// Run after the server has drained.
    pub finally: Vec<Task>,
    /// Each module's handle, by name.
    pub handles: Vec<(&'static str, Box<dyn Any + Send + Sync>)>,
}

impl Assembly {
    /// Takes the handle of module `name` as a `T`.
    pub fn take_handle<T: 'static>(&mut self, name: &str) -> Option<T> {
        let at = self.handles.iter().position(|(n, _)| *n == name)?;
        let (_, handle) = self.handles.swap_remove(at);
        handle.downcast::<T>().ok().map(|b| *b)
    }
}

/// Builds each module on its (migrated) pool, with settings from the
/// environment, for one embedded server.
pub async fn build_all(
    modules: Vec<(&'static dyn AnyModule, AnyPool)>,
    instance: &str,
    shutdown: &CancellationToken,
    embedded: &Embedded,
) -> anyhow::Result<Assembly> {
    let mut assembly =
        Assembly { services: ServerBuilder::new(), tasks: Vec::new(), finally: Vec::new(), handles: Vec::new() };
    for (module, pool) in modules {
        assembly.tasks.push(Box::pin(crate::db::request_id_janitor(pool.clone(), shutdown.clone())));
        let ctx = Context {
            pool,
            instance: instance.to_owned(),
            shutdown: shutdown.clone(),
            embedded: Some(embedded.clone()),
        };
        let check = crate::server::database_check(&format!("{} database", module.name()), ctx.pool.clone());
        let built =
            module.build_from_env(ctx).await.map_err(|e| anyhow::anyhow!("cannot start {}: {e:#}", module.name()))?;
        assembly.services = assembly.services.merge(built.services.check(check));
        assembly.tasks.extend(built.tasks);
        assembly.finally.extend(built.finally);
        assembly.handles.push((module.name(), built.handle));
    }
    Ok(assembly)
}

/// The settings every `kefu serve NAME` shares.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub auth: AuthArgs,
    #[command(flatten)]
    pub db: DatabaseArgs,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    /// Apply migrations before serving.
    #[arg(long, env = "KEFU_MIGRATE")]
    pub migrate: bool,
}

/// `kefu serve NAME`: one module in its own process until SIGTERM, then a
/// drain, then its tasks are awaited.
pub async fn serve<M: Module>(mut common: ServeArgs, args: M::Args) -> anyhow::Result<()> {
    let guard = crate::telemetry::init(&format!("kefu-{}", M::NAME), &common.telemetry)?;
    // Every setting is checked before the network is touched.
    let verifier = common.auth.verifier()?;
    M::check(&args, false)?;
    crate::db::validate_url(&common.db.database_url)?;
    common.server.tls.server_config(common.server.listen)?;
    common.server.tls.install_client()?;
    let pool = crate::db::connect(&common.db.database_url, common.db.database_max_connections).await?;
    if common.migrate {
        crate::db::migrate(&pool, M::migrator()).await?;
    }
    let shutdown = crate::shutdown::on_signal();
    let janitor = crate::db::request_id_janitor(pool.clone(), shutdown.clone());
    let ctx = Context { pool, instance: instance_name(), shutdown: shutdown.clone(), embedded: None };
    let check = crate::server::database_check("database", ctx.pool.clone());
    let mut built = M::build(args, ctx).await?;
    built.tasks.push(Box::pin(janitor));
    let finally = std::mem::take(&mut built.finally);
    // More requests at once than the pool can serve only wait for a
    // connection: shed them early instead (eight per connection).
    common.server.concurrency_limit.get_or_insert(common.db.database_max_connections.saturating_mul(8));
    let srv = built.services.check(check).bind(&common.server, verifier).await?;
    tracing::info!(grpc = %srv.local_addr(), admin = %srv.admin_addr(), "{} service listening", M::NAME);
    let tasks: Vec<_> = built.tasks.into_iter().map(tokio::spawn).collect();
    let result = srv.run(shutdown.clone()).await;
    // However the server stopped, the module's tasks stop with it.
    shutdown.cancel();
    for task in tasks {
        let _ = task.await;
    }
    for last in finally {
        last.await;
    }
    guard.shutdown().await;
    result
}
