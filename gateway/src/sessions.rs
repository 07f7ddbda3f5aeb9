//! Remembers which tokens' sessions the database said were live, so a busy
//! caller does not cost a query per request — without letting an ended
//! session through. On PostgreSQL every write that can end a session (logout,
//! a reused refresh token, a password change, disabling an account, roles
//! taken away) notifies channel [`CHANNEL`] in its transaction; every gateway
//! replica listens and forgets what it remembered when a notification
//! arrives, and remembers nothing while it is not listening. On SQLite (one
//! process, `kefu up`) nothing is remembered: the query is in-process.
//!
//! A verdict read from the database is kept only if no session ended while
//! it was being read (a generation counter), and for at most [`MAX_AGE`].
//! The gateway's database address must reach PostgreSQL itself or a
//! session-mode pooler: a transaction-mode pooler does not carry `LISTEN`
//! (the listener's own pings then stop coming back, and it stops
//! remembering).
use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use sqlx::{AnyConnection, AnyPool};

/// The notification channel of ended sessions.
pub const CHANNEL: &str = "kefu_gateway_sessions";
/// How long a remembered verdict lasts at most.
pub const MAX_AGE: Duration = Duration::from_secs(10);
/// Verdicts remembered at most (then all are forgotten and the count starts again).
const MAX_ENTRIES: usize = 100_000;

#[derive(Default)]
pub struct SessionCache {
    /// True while this process listens for ended sessions.
    listening: AtomicBool,
    generation: AtomicU64,
    live: Mutex<HashMap<String, Instant>>,
    /// Ends the listener when the cache is dropped.
    stop: tokio_util::sync::CancellationToken,
}

impl Drop for SessionCache {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// How often a listening replica sends itself a ping through the channel.
const PING_EVERY: Duration = Duration::from_secs(5);
/// A listener whose own ping has not come back for this long is taken for
/// lost (a half-open connection, a pooler that drops notifications).
const PING_LOST: Duration = Duration::from_secs(12);

impl SessionCache {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.live.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether this process listens for ended sessions (and so remembers).
    pub fn listening(&self) -> bool {
        self.listening.load(Ordering::SeqCst)
    }

    /// Whether `key`'s session was found live lately and none has ended since.
    pub fn is_live(&self, key: &str) -> bool {
        self.listening.load(Ordering::SeqCst) && self.entries().get(key).is_some_and(|at| at.elapsed() < MAX_AGE)
    }

    /// Taken before reading a verdict from the database.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Remembers a live verdict read since `generation`, unless a session
    /// ended meanwhile. (Its age counts from here, after the read; the
    /// generation covers what ended during the read.)
    pub fn remember(&self, key: String, generation: u64) {
        if !self.listening.load(Ordering::SeqCst) {
            return;
        }
        let mut live = self.entries();
        if self.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        if live.len() >= MAX_ENTRIES {
            live.clear();
        }
        live.insert(key, Instant::now());
    }

    /// Some session ended (here, after its commit, or on another replica).
    pub fn forget_all(&self) {
        let mut live = self.entries();
        self.generation.fetch_add(1, Ordering::SeqCst);
        live.clear();
    }

    fn set_listening(&self, on: bool) {
        self.forget_all();
        self.listening.store(on, Ordering::SeqCst);
    }

    /// On PostgreSQL, listens for ended sessions for as long as the cache
    /// lives, reconnecting after a lost connection and remembering nothing
    /// meanwhile. A ping it sends itself every few seconds must come back
    /// through the channel, or the listener is taken for lost. Does nothing
    /// on SQLite.
    pub fn listen(self: &Arc<Self>, pool: &AnyPool) {
        let url = pool.connect_options().database_url.clone();
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return;
        }
        let (cache, stop, pool) = (Arc::downgrade(self), self.stop.clone(), pool.clone());
        let me = format!("ping:{}", uuid::Uuid::now_v7());
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                let Some(c) = cache.upgrade() else { return };
                c.set_listening(false);
                drop(c);
                let listener = async {
                    let mut l = sqlx::postgres::PgListener::connect(url.as_str()).await?;
                    // A lost connection is reported, not silently re-made.
                    l.eager_reconnect(false);
                    l.listen(CHANNEL).await?;
                    Ok::<_, sqlx::Error>(l)
                };
                let mut listener = tokio::select! {
                    () = stop.cancelled() => return,
                    l = listener => match l {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot listen for ended sessions; checking every request");
                            tokio::select! {
                                () = stop.cancelled() => return,
                                () = tokio::time::sleep(backoff) => {}
                            }
                            backoff = (backoff * 2).min(Duration::from_secs(5));
                            continue;
                        }
                    },
                };
                backoff = Duration::from_millis(100);
                let Some(c) = cache.upgrade() else { return };
                c.set_listening(true);
                drop(c);
                let mut last_echo = Instant::now();
                let mut ping = tokio::time::interval(PING_EVERY);
                loop {
                    tokio::select! {
                        () = stop.cancelled() => return,
                        m = listener.try_recv() => {
                            // Ok(None) or an error: the connection was lost,
                            // and notifications with it.
                            let Ok(Some(n)) = m else { break };
                            if n.payload() == me {
                                last_echo = Instant::now();
                            } else if !n.payload().starts_with("ping:") {
                                let Some(c) = cache.upgrade() else { return };
                                c.forget_all();
                            }
                        }
                        _ = ping.tick() => {
                            if last_echo.elapsed() > PING_LOST {
                                break;
                            }
                            let sent = sqlx::query("SELECT pg_notify($1, $2)").bind(CHANNEL).bind(&me).execute(&pool).await;
                            if let Err(e) = sent {
                                tracing::debug!(error = %e, "could not ping the ended-sessions channel");
                            }
                        }
                    }
                }
                tracing::warn!("lost the ended-sessions channel; checking every request until it is back");
            }
        });
    }
}

/// Tells every gateway, when the transaction on `conn` commits, that
/// sessions ended (PostgreSQL; nothing to do on SQLite).
pub async fn announce(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    if conn.backend_name() == "PostgreSQL" {
        sqlx::query("SELECT pg_notify($1, 'ended')").bind(CHANNEL).execute(conn).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_read_while_a_session_ended_is_not_remembered() {
        let c = SessionCache::default();
        c.listening.store(true, Ordering::SeqCst);
        let g = c.generation();
        c.forget_all();
        c.remember("s".into(), g);
        assert!(!c.is_live("s"));
        c.remember("s".into(), c.generation());
        assert!(c.is_live("s"));
        c.forget_all();
        assert!(!c.is_live("s"), "forgotten when a session ends");
    }

    #[test]
    fn nothing_is_remembered_while_not_listening() {
        let c = SessionCache::default();
        c.remember("s".into(), c.generation());
        assert!(!c.is_live("s"));
    }
}
