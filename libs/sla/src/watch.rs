//! A watcher's stream of SLA events and record changes: events recorded
//! after the one a reconnecting watcher saw last are replayed first, then
//! the live feed follows, without gaps or repeats. The stream ends with
//! UNAVAILABLE when the process shuts down or the live feed was interrupted
//! (events may have been missed): clients reconnect with the last event id
//! and get them replayed from the database.
use std::{collections::HashSet, pin::Pin};

use futures::{Stream, StreamExt};
use tokio::sync::{broadcast, watch};
use tokio_stream::wrappers::{BroadcastStream, errors::BroadcastStreamRecvError};
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::{
    live::{LiveStore, RecordChange},
    target::SlaEvent,
};

/// What a watcher is sent.
#[derive(Debug, Clone)]
pub enum Watched {
    Event(SlaEvent),
    Change(RecordChange),
}

/// Which events a watcher follows; empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub queue: String,
    pub assignee: String,
    /// What the watcher may see at all (none: everything), whatever the
    /// filter asks for.
    pub scope: Option<Scope>,
}

/// The events of these people or these queues: an agent's own and their
/// teams', a team lead's team.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    pub people: std::collections::BTreeSet<String>,
    pub queues: std::collections::BTreeSet<String>,
}

impl Filter {
    pub fn passes(&self, queue: &str, assignee: &str) -> bool {
        (self.queue.is_empty() || self.queue == queue)
            && (self.assignee.is_empty() || self.assignee == assignee)
            && self.scope.as_ref().is_none_or(|s| s.people.contains(assignee) || s.queues.contains(queue))
    }
}

pub type WatchStream = Pin<Box<dyn Stream<Item = Result<Watched, Status>> + Send>>;

/// The live feed, subscribed to before the replay is read so nothing falls
/// between the two.
pub struct Subscription {
    events: broadcast::Receiver<SlaEvent>,
    changes: broadcast::Receiver<RecordChange>,
    interruptions: Option<watch::Receiver<u64>>,
    dropped: watch::Receiver<u64>,
}

impl Subscription {
    /// `dropped` changes each time this process could not publish events
    /// (see [`crate::LiveWriter::dropped_events`]).
    pub fn new(live: &dyn LiveStore, dropped: watch::Receiver<u64>) -> Self {
        Self {
            events: live.subscribe(),
            changes: live.subscribe_changes(),
            interruptions: live.interruptions(),
            dropped,
        }
    }

    /// The replayed events (read after subscribing), then the live feed.
    pub fn stream(self, replay: Vec<SlaEvent>, filter: Filter, shutdown: CancellationToken) -> WatchStream {
        let seen: HashSet<String> = replay.iter().map(|e| e.id.clone()).collect();
        let replayed: Vec<Result<Watched, Status>> = replay
            .into_iter()
            .filter(|e| filter.passes(&e.queue, &e.assignee))
            .map(|e| Ok(Watched::Event(e)))
            .collect();
        let f = filter.clone();
        let live = BroadcastStream::new(self.events).filter_map(move |item| {
            let out = match item {
                Ok(ev) if f.passes(&ev.queue, &ev.assignee) && !seen.contains(&ev.id) => Some(Ok(Watched::Event(ev))),
                Ok(_) => None,
                Err(BroadcastStreamRecvError::Lagged(n)) => {
                    Some(Err(Status::data_loss(format!("the watcher fell {n} events behind; reconnect and reload"))))
                }
            };
            futures::future::ready(out)
        });
        let changes = BroadcastStream::new(self.changes).filter_map(move |item| {
            let out = match item {
                Ok(c) if filter.passes(&c.queue, &c.assignee) => Some(Ok(Watched::Change(c))),
                _ => None,
            };
            futures::future::ready(out)
        });
        let (interruptions, mut dropped) = (self.interruptions, self.dropped);
        let end = async move {
            let interrupted = async move {
                match interruptions {
                    Some(mut rx) => {
                        if rx.changed().await.is_err() {
                            std::future::pending::<()>().await;
                        }
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let status = tokio::select! {
                () = shutdown.cancelled() => Status::unavailable("the server is shutting down; reconnect with since_event_id"),
                () = interrupted => Status::unavailable(
                    "the live event feed was interrupted; reconnect with since_event_id to replay what was missed",
                ),
                Ok(()) = dropped.changed() => Status::unavailable(
                    "events could not be published live; reconnect with since_event_id to replay them",
                ),
            };
            Err(status)
        };
        let events = futures::stream::iter(replayed).chain(futures::stream::select(live, changes));
        Box::pin(futures::stream::select(events, futures::stream::once(end)))
    }
}
