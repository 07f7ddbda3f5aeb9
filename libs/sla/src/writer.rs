//! The hand-off from a committed change to the live store, off the request
//! path. A request queues what its commit changed and returns; one task per
//! process applies the queue in order, each write bounded in time. A request
//! cannot drop its changes by being cancelled, and a slow or lost Redis never
//! fails or holds up a write: when a change cannot be applied (timeout,
//! error, full queue) the rebuild flag is set and the sweeper rebuilds the
//! live view from the database once the store answers again. Changes a
//! process had queued when it died are put back by the rebuild every new
//! process runs first, and the sweeper's safety net fires whatever falls due
//! in between from the database.
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::sync::{mpsc, oneshot};

use crate::{
    live::{LiveEntry, LiveStore, RecordChange},
    target::SlaEvent,
};

/// Longest time one batch of writes may take before it counts as failed.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest time a request waits for its own changes to show in the live view
/// (so a dashboard read right after a write sees it) while the store is
/// healthy; it never waits while the store is failing.
pub const READ_YOUR_WRITES_WAIT: Duration = Duration::from_millis(250);
/// Changes queued at most; beyond it they are dropped and the view rebuilt.
const QUEUE: usize = 8192;

struct Job {
    entries: Vec<LiveEntry>,
    events: Vec<SlaEvent>,
    change: Option<RecordChange>,
    done: oneshot::Sender<()>,
}

/// What a change did, to tell the live store and watchers after commit.
#[derive(Default)]
pub struct Changes {
    pub entries: Vec<LiveEntry>,
    pub events: Vec<SlaEvent>,
}

impl Changes {
    pub fn merge(&mut self, other: Changes) {
        self.entries.extend(other.entries);
        self.events.extend(other.events);
    }
}

/// Queues committed changes for the live store.
pub struct LiveWriter {
    tx: mpsc::Sender<Job>,
    healthy: Arc<AtomicBool>,
    rebuild: Arc<AtomicBool>,
    /// Bumped when events could not be published: this process's watchers
    /// end with UNAVAILABLE and replay them from the database.
    dropped: tokio::sync::watch::Sender<u64>,
}

impl LiveWriter {
    /// Starts the writing task; it ends when the writer is dropped.
    pub fn spawn(store: Arc<dyn LiveStore>, rebuild: Arc<AtomicBool>) -> Self {
        let (tx, mut rx) = mpsc::channel::<Job>(QUEUE);
        let healthy = Arc::new(AtomicBool::new(true));
        let (task_healthy, task_rebuild) = (healthy.clone(), rebuild.clone());
        let (dropped, _) = tokio::sync::watch::channel(0_u64);
        let task_dropped = dropped.clone();
        tokio::spawn(async move {
            while let Some(job) = rx.recv().await {
                if job.entries.is_empty() && job.events.is_empty() && job.change.is_none() {
                    // A flush marker: everything before it is applied.
                    let _ = job.done.send(());
                    continue;
                }
                let write = async {
                    if !job.entries.is_empty() {
                        store.put_many(&job.entries).await?;
                    }
                    for ev in &job.events {
                        store.publish(ev).await?;
                    }
                    if let Some(c) = &job.change {
                        store.publish_change(c).await?;
                    }
                    anyhow::Ok(())
                };
                let failed = match tokio::time::timeout(WRITE_TIMEOUT, write).await {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(e.to_string()),
                    Err(_) => Some(format!("no answer within {} ms", WRITE_TIMEOUT.as_millis())),
                };
                match failed {
                    None => {
                        if !task_healthy.swap(true, Ordering::SeqCst) {
                            tracing::info!("the live SLA store answers again");
                        }
                    }
                    Some(error) => {
                        // Entries are rebuilt from the database; events stay
                        // in the database for watchers to replay.
                        if !job.entries.is_empty() {
                            task_rebuild.store(true, Ordering::SeqCst);
                        }
                        if !job.events.is_empty() || job.change.is_some() {
                            task_dropped.send_modify(|n| *n += 1);
                        }
                        if task_healthy.swap(false, Ordering::SeqCst) {
                            tracing::error!(%error, "live SLA store write failed; the view will be rebuilt from the database");
                        }
                    }
                }
                let _ = job.done.send(());
            }
        });
        Self { tx, healthy, rebuild, dropped }
    }

    /// Changes each time events could not be published (see [`LiveStore::interruptions`]).
    pub fn dropped_events(&self) -> tokio::sync::watch::Receiver<u64> {
        self.dropped.subscribe()
    }

    /// Waits, at most `within`, until everything queued so far is applied
    /// (a stopping process hands its last changes over).
    pub async fn flush(&self, within: Duration) -> bool {
        let (done, applied) = oneshot::channel();
        let marker = Job { entries: Vec::new(), events: Vec::new(), change: None, done };
        if self.tx.send(marker).await.is_err() {
            return false;
        }
        matches!(tokio::time::timeout(within, applied).await, Ok(Ok(())))
    }

    /// Whether the last write reached the store.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::SeqCst)
    }

    /// Queues what a commit changed. Waits at most
    /// [`READ_YOUR_WRITES_WAIT`] for it to be applied, and not at all while
    /// the store is failing; never fails.
    pub async fn send(&self, entries: Vec<LiveEntry>, events: Vec<SlaEvent>, change: Option<RecordChange>) {
        if entries.is_empty() && events.is_empty() && change.is_none() {
            return;
        }
        let (done, applied) = oneshot::channel();
        let has_entries = !entries.is_empty();
        let has_events = !events.is_empty() || change.is_some();
        if self.tx.try_send(Job { entries, events, change, done }).is_err() {
            if has_entries {
                self.rebuild.store(true, Ordering::SeqCst);
            }
            if has_events {
                self.dropped.send_modify(|n| *n += 1);
            }
            tracing::warn!("the live SLA write queue is full; the view will be rebuilt from the database");
            return;
        }
        if self.healthy() {
            let _ = tokio::time::timeout(READ_YOUR_WRITES_WAIT, applied).await;
        }
    }
}
