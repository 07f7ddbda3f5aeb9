//! Settings every service with SLA targets takes: the live store and the
//! sweeper's pace.
use std::{sync::Arc, time::Duration};

use clap::Args;

use crate::{LiveStore, MemoryLiveStore, RedisLiveStore};

#[derive(Debug, Clone, Args)]
pub struct LiveArgs {
    /// Redis for the live SLA state (`redis://host:6379`); required by `kefu
    /// serve tickets` and `kefu serve complaints`, while `kefu up` keeps live
    /// state in memory.
    #[arg(long, env = "KEFU_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Shards of the live SLA state (sweeper parallelism across replicas).
    #[arg(long, env = "KEFU_SLA_SHARDS", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub sla_shards: u32,
    /// How often the sweeper looks for due targets.
    #[arg(long, env = "KEFU_SLA_SWEEP_INTERVAL", default_value = "500ms", value_parser = kefu_kit::config::parse_duration)]
    pub sla_sweep_interval: Duration,
}

impl LiveArgs {
    /// Refuses a missing or malformed Redis address outside `kefu up`.
    pub fn check(&self, embedded: bool) -> anyhow::Result<()> {
        match &self.redis_url {
            None if !embedded => anyhow::bail!("set KEFU_REDIS_URL (--redis-url) for the live SLA state"),
            Some(url) if !url.starts_with("redis://") && !url.starts_with("rediss://") => {
                anyhow::bail!("KEFU_REDIS_URL must start with redis:// or rediss://")
            }
            _ => Ok(()),
        }
    }

    /// The live store: memory when embedded, else Redis under `prefix`
    /// (each service its own, so each sweeper claims only its targets).
    pub async fn store(&self, embedded: bool, prefix: &str) -> anyhow::Result<Arc<dyn LiveStore>> {
        if embedded {
            return Ok(Arc::new(MemoryLiveStore::new(self.sla_shards)));
        }
        let url = self
            .redis_url
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("set KEFU_REDIS_URL (--redis-url) for the live SLA state"))?;
        Ok(Arc::new(RedisLiveStore::connect(url, self.sla_shards, prefix).await?))
    }
}
