//! The tickets service's use of the SLA engine: which targets a ticket or a
//! call gets, what starts, pauses, resumes and stops them, and what happens
//! when they warn, breach or escalate. The database is the record; the live
//! store is told after each commit.
use std::sync::{Arc, RwLock, atomic::AtomicBool};

use async_trait::async_trait;
use kefu_kit::Error;
use kefu_proto::tickets::v1 as pb;
use kefu_sla::{
    Calendar, Claimed, Clock, DueHandler, DueKind, EventKind, Facts, LiveEntry, LiveStore, LiveWriter, Metric, Policy,
    RecordChange, SlaEvent, Target, TargetKey, policy,
};
use opentelemetry::{
    KeyValue,
    metrics::{Counter, Gauge, Histogram},
};
use sqlx::{AnyConnection, AnyPool};

use crate::{
    domain,
    store::{self, TargetRow, TicketRow},
};

mod config;
mod recompute;

pub use config::{Config, DEFAULT_CATEGORY_LABELS, EscalationRules, FilingCap, NOTIFY_ROLES, SlaSettings};
use config::{config_versions, read_config, seed};

struct SlaMetrics {
    events: Counter<u64>,
    lag: Histogram<f64>,
    open: Gauge<i64>,
    at_risk: Gauge<i64>,
    breached: Gauge<i64>,
    recomputed: Counter<u64>,
}

pub use kefu_sla::Changes;

pub struct SlaEngine {
    pool: AnyPool,
    pub live: Arc<dyn LiveStore>,
    pub clock: Arc<dyn Clock>,
    config: RwLock<Arc<Config>>,
    /// The last configurations loaded (time already used by a target is
    /// measured in the calendar it was computed under).
    history: std::sync::Mutex<Vec<Arc<Config>>>,
    pub audit_keys: kefu_kit::audit::AuditKeys,
    /// Set when a live-store write failed: the sweeper rebuilds.
    pub rebuild_flag: Arc<AtomicBool>,
    /// Applies committed changes to the live store off the request path.
    writer: LiveWriter,
    /// One reload at a time, so an older read is never installed last.
    reloading: tokio::sync::Mutex<()>,
    /// One recompute pass at a time in this process.
    recomputing: tokio::sync::Mutex<()>,
    metrics: SlaMetrics,
}

pub fn entry_of(t: &Target, queue: &str, assignee: &str) -> LiveEntry {
    LiveEntry::of(t, queue, assignee)
}

fn routed(e: SlaEvent, queue: &str, assignee: &str) -> SlaEvent {
    e.routed(queue, assignee)
}

fn cal_err(e: kefu_sla::CalendarError) -> Error {
    kefu_sla::calendar::to_error(e)
}

impl SlaEngine {
    /// Loads the configuration from the database, seeding the defaults on
    /// first start.
    pub async fn load(
        pool: AnyPool,
        live: Arc<dyn LiveStore>,
        clock: Arc<dyn Clock>,
        settings: SlaSettings,
    ) -> anyhow::Result<Self> {
        let audit_keys = settings.audit_keys.clone().unwrap_or_else(kefu_kit::audit::AuditKeys::generate);
        let mut tx = pool.begin().await?;
        seed(&mut tx, &settings, &audit_keys).await?;
        tx.commit().await?;
        let mut conn = pool.acquire().await?;
        let config = read_config(&mut conn).await?;
        drop(conn);
        let meter = kefu_kit::telemetry::meter();
        // A new process rebuilds the live view on its first sweep: what a
        // process that died had queued but not written is put back.
        let rebuild_flag = Arc::new(AtomicBool::new(true));
        let writer = LiveWriter::spawn(live.clone(), rebuild_flag.clone());
        Ok(Self {
            pool,
            live,
            clock,
            history: std::sync::Mutex::new(vec![Arc::new(config.clone())]),
            config: RwLock::new(Arc::new(config)),
            audit_keys,
            rebuild_flag,
            writer,
            reloading: tokio::sync::Mutex::new(()),
            recomputing: tokio::sync::Mutex::new(()),
            metrics: SlaMetrics {
                events: meter
                    .u64_counter("kefu.sla.events")
                    .with_description("SLA events emitted, by kind and metric")
                    .build(),
                lag: meter
                    .f64_histogram("kefu.sla.sweep.lag")
                    .with_unit("s")
                    .with_description("Delay from a target's due or warning time to its event")
                    .with_boundaries(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0])
                    .build(),
                open: meter.i64_gauge("kefu.sla.open").with_description("Open SLA targets by queue").build(),
                at_risk: meter
                    .i64_gauge("kefu.sla.at_risk")
                    .with_description("Running SLA targets due within the next hour, by queue")
                    .build(),
                breached: meter
                    .i64_gauge("kefu.sla.breached")
                    .with_description("Breached open SLA targets by queue")
                    .build(),
                recomputed: meter
                    .u64_counter("kefu.sla.recomputed")
                    .with_description("Running SLA targets recomputed after a configuration change")
                    .build(),
            },
        })
    }

    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The configuration this replica has loaded.
    pub fn config(&self) -> Arc<Config> {
        self.config.read().map_or_else(|p| p.into_inner().clone(), |c| c.clone())
    }

    /// The default calendar.
    pub fn calendar(&self) -> Arc<Calendar> {
        self.config().calendar("")
    }

    pub fn policies(&self) -> Vec<Policy> {
        self.config().policies.clone()
    }

    pub fn escalation(&self) -> EscalationRules {
        self.config().escalation.clone()
    }

    /// Reloads the configuration when another replica (or this one)
    /// changed it; true when it did.
    pub async fn refresh(&self) -> Result<bool, Error> {
        let _one = self.reloading.lock().await;
        let mut conn = self.pool.acquire().await?;
        let cur = self.config();
        if config_versions(&mut conn).await? == (cur.version, cur.rules_version) {
            return Ok(false);
        }
        let config = Arc::new(read_config(&mut conn).await?);
        if let Ok(mut h) = self.history.lock() {
            h.push(config.clone());
            let extra = h.len().saturating_sub(8);
            h.drain(..extra);
        }
        if let Ok(mut g) = self.config.write() {
            *g = config;
        }
        Ok(true)
    }

    /// The configuration of `version`, if this process loaded it recently.
    fn config_at(&self, version: i64) -> Option<Arc<Config>> {
        self.history.lock().ok()?.iter().rev().find(|c| c.version == version).cloned()
    }

    /// After this replica committed a configuration change: reload now and
    /// recompute the running targets it affects (a failure is logged; the
    /// change is saved and the follower retries).
    pub async fn refresh_after_change(self: &Arc<Self>) {
        if let Err(e) = self.refresh().await {
            tracing::warn!(error = %e, "the change is saved; reloading it failed and will be retried");
            return;
        }
        let engine = self.clone();
        tokio::spawn(async move {
            if let Err(e) = engine.recompute_stale().await {
                tracing::warn!(error = %e, "recomputing running SLA targets failed; retrying");
            }
        });
    }

    /// Follows configuration changes made through any replica, every
    /// `every`, and recomputes running targets computed under an older one.
    pub async fn follow_config(self: Arc<Self>, every: std::time::Duration, stop: tokio_util::sync::CancellationToken) {
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {
                    match self.refresh().await {
                        Ok(true) => tracing::info!("configuration changed elsewhere: calendars, policies and rules reloaded"),
                        Ok(false) => {}
                        Err(e) => tracing::warn!(error = %e, "could not check for configuration changes; retrying"),
                    }
                    if let Err(e) = self.recompute_stale().await {
                        tracing::warn!(error = %e, "recomputing running SLA targets failed; retrying");
                    }
                }
            }
        }
    }

    fn policy_for(&self, cfg: &Config, t: &TicketRow) -> Option<Policy> {
        let facts = Facts {
            record_kind: domain::kind_name(t.kind),
            channel: domain::channel_name(t.channel),
            category: &t.category,
            priority: domain::priority_name(t.priority),
            tier: &t.customer_tier,
            source: "",
        };
        policy::first_match(&cfg.policies, &facts).cloned()
    }

    /// The calendar a ticket's resolution counts in (its policy's).
    pub fn calendar_for_ticket(&self, t: &TicketRow) -> Arc<Calendar> {
        let cfg = self.config();
        match self.policy_for(&cfg, t) {
            Some(p) => cfg.calendar(&cfg.calendar_id_of(&p)),
            None => cfg.calendar(""),
        }
    }

    /// The due-time cap of a tax-filing request: the filing deadline's close
    /// of business, moved back by the calendar's filing lead. When the
    /// period's official deadline is not loaded, a provisional one.
    pub fn filing_cap(&self, t: &TicketRow) -> Result<Option<FilingCap>, Error> {
        let cfg = self.config();
        let calendar_id = self.policy_for(&cfg, t).map_or_else(String::new, |p| cfg.calendar_id_of(&p));
        cfg.filing_cap(&calendar_id, &t.filing_period)
    }

    /// Starts a target; the row it wrote is computed under `cfg`.
    async fn start(
        &self,
        conn: &mut AnyConnection,
        t: &TicketRow,
        metric: Metric,
        cycle: i64,
        now: i64,
    ) -> Result<Changes, Error> {
        let cfg = self.config();
        let Some(policy) = self.policy_for(&cfg, t) else { return Ok(Changes::default()) };
        let Some(rule) = policy.rule(metric) else { return Ok(Changes::default()) };
        let calendar_id = cfg.calendar_id_of(&policy);
        let cal = cfg.calendar(&calendar_id);
        let cap =
            if matches!(metric, Metric::Resolution) { cfg.filing_cap(&calendar_id, &t.filing_period)? } else { None };
        let key = TargetKey { record_id: t.id.clone(), metric, cycle };
        let target = Target::start(key, rule, now, cap.as_ref().map(|c| c.cap_ms), &cal).map_err(cal_err)?;
        store::put_target(
            conn,
            &TargetRow {
                target: target.clone(),
                policy_id: policy.id.clone(),
                escalation_due_at: None,
                escalated_at: None,
                open: true,
                config_version: cfg.version,
                cap_provisional: cap.is_some_and(|c| c.provisional),
                calendar_id,
            },
        )
        .await?;
        Ok(Changes { entries: vec![entry_of(&target, &t.queue, &t.assignee)], events: vec![] })
    }

    /// Applies `f` to each open target of the ticket matching `which`.
    async fn each_open(
        &self,
        conn: &mut AnyConnection,
        t: &TicketRow,
        which: impl Fn(&Target) -> bool,
        f: impl Fn(&mut TargetRow, &Calendar, i64) -> Result<Option<SlaEvent>, kefu_sla::CalendarError>,
    ) -> Result<Changes, Error> {
        let now = self.now();
        let cfg = self.config();
        let mut changes = Changes::default();
        for mut row in store::targets_of(conn, &t.id).await? {
            if !row.open || !which(&row.target) {
                continue;
            }
            let cal = cfg.calendar(&row.calendar_id);
            let ev = f(&mut row, &cal, now).map_err(cal_err)?;
            row.open = !row.target.is_finished();
            // Computed under this replica's configuration: if either it or
            // the row is older than the newest, the recompute pass redoes it.
            row.config_version = row.config_version.min(cfg.version);
            store::put_target(conn, &row).await?;
            changes.entries.push(entry_of(&row.target, &t.queue, &t.assignee));
            if let Some(ev) = ev {
                let ev = routed(ev, &t.queue, &t.assignee);
                if store::insert_event(conn, &ev).await? {
                    changes.events.push(ev);
                }
            }
        }
        Ok(changes)
    }

    /// A new ticket: first response and resolution (or feedback reply).
    pub async fn on_created(&self, conn: &mut AnyConnection, t: &TicketRow) -> Result<Changes, Error> {
        let now = self.now();
        let mut c = self.start(conn, t, Metric::FirstResponse, 1, now).await?;
        let main = if t.kind() == kefu_proto::tickets::v1::TicketKind::Feedback {
            Metric::FeedbackReply
        } else {
            Metric::Resolution
        };
        c.merge(self.start(conn, t, main, t.resolution_cycle, now).await?);
        Ok(c)
    }

    /// A public agent reply fulfils first response and the open next response.
    pub async fn on_agent_reply(&self, conn: &mut AnyConnection, t: &TicketRow) -> Result<Changes, Error> {
        self.each_open(
            conn,
            t,
            |x| matches!(x.key.metric, Metric::FirstResponse | Metric::NextResponse),
            |row, cal, now| row.target.fulfil(now, cal),
        )
        .await
    }

    /// A customer message starts a next-response cycle unless one is open
    /// (the oldest unanswered message counts).
    pub async fn on_customer_message(&self, conn: &mut AnyConnection, t: &mut TicketRow) -> Result<Changes, Error> {
        let open_next = store::targets_of(conn, &t.id)
            .await?
            .iter()
            .any(|r| r.open && matches!(r.target.key.metric, Metric::NextResponse | Metric::FirstResponse));
        if open_next {
            return Ok(Changes::default());
        }
        t.next_response_cycle += 1;
        let now = self.now();
        self.start(conn, t, Metric::NextResponse, t.next_response_cycle, now).await
    }

    /// Status changes: pending customer pauses; leaving it resumes; solved
    /// fulfils resolution; reopen starts a new resolution cycle.
    pub async fn on_status(
        &self,
        conn: &mut AnyConnection,
        t: &TicketRow,
        from: i64,
        to: i64,
        reopened: bool,
    ) -> Result<Changes, Error> {
        use kefu_proto::tickets::v1::Status;
        let pending = Status::PendingCustomer as i64;
        let pausable = |x: &Target| x.key.metric.pauses_on_customer();
        let mut c = Changes::default();
        if to == pending && from != pending {
            c.merge(self.each_open(conn, t, pausable, |row, cal, now| row.target.pause(now, cal)).await?);
        }
        if from == pending && to != pending {
            c.merge(self.each_open(conn, t, pausable, |row, cal, now| row.target.resume(now, cal)).await?);
        }
        if to == Status::Solved as i64 {
            c.merge(
                self.each_open(
                    conn,
                    t,
                    |x| x.key.metric == Metric::Resolution,
                    |row, cal, now| row.target.fulfil(now, cal),
                )
                .await?,
            );
        }
        if reopened {
            let now = self.now();
            c.merge(self.start(conn, t, Metric::Resolution, t.resolution_cycle, now).await?);
        }
        Ok(c)
    }

    /// The feedback result reached the customer.
    pub async fn on_feedback_sent(&self, conn: &mut AnyConnection, t: &TicketRow) -> Result<Changes, Error> {
        self.each_open(conn, t, |x| x.key.metric == Metric::FeedbackReply, |row, cal, now| row.target.fulfil(now, cal))
            .await
    }

    /// Priority, category or channel changed: re-match, keep elapsed time.
    pub async fn on_rematch(&self, conn: &mut AnyConnection, t: &TicketRow) -> Result<Changes, Error> {
        let cfg = self.config();
        let Some(policy) = self.policy_for(&cfg, t) else { return Ok(Changes::default()) };
        let calendar_id = cfg.calendar_id_of(&policy);
        let cal = cfg.calendar(&calendar_id);
        let cap = cfg.filing_cap(&calendar_id, &t.filing_period)?;
        let now = self.now();
        let mut changes = Changes::default();
        for mut row in store::targets_of(conn, &t.id).await? {
            if !row.open {
                continue;
            }
            if let Some(rule) = policy.rule(row.target.key.metric) {
                if row.target.key.metric == Metric::Resolution {
                    row.target.cap_at = cap.as_ref().map(|c| c.cap_ms);
                    row.cap_provisional = cap.as_ref().is_some_and(|c| c.provisional);
                }
                // Time used so far is measured in the calendar it ran in.
                let old = cfg.calendar(&row.calendar_id);
                row.target.settle(now, &old).map_err(cal_err)?;
                row.target.rematch(rule, now, &cal).map_err(cal_err)?;
                row.policy_id.clone_from(&policy.id);
                row.calendar_id.clone_from(&calendar_id);
            }
            row.config_version = row.config_version.min(cfg.version);
            store::put_target(conn, &row).await?;
            changes.entries.push(entry_of(&row.target, &t.queue, &t.assignee));
        }
        Ok(changes)
    }

    /// Queue or assignee changed: the live view regroups.
    pub async fn on_routing(&self, conn: &mut AnyConnection, t: &TicketRow) -> Result<Changes, Error> {
        let mut c = Changes::default();
        for row in store::targets_of(conn, &t.id).await? {
            if row.open {
                c.entries.push(entry_of(&row.target, &t.queue, &t.assignee));
            }
        }
        Ok(c)
    }

    /// Tells the live store and watchers, off the request path (see
    /// [`LiveWriter`]): never fails and never waits on a failing store.
    pub async fn publish(&self, changes: Changes) {
        for ev in &changes.events {
            self.metrics
                .events
                .add(1, &[KeyValue::new("kind", ev.kind.as_str()), KeyValue::new("metric", ev.key.metric.as_str())]);
        }
        self.writer.send(changes.entries, changes.events, None).await;
    }

    /// Tells watchers a ticket changed (best effort: the change is committed).
    pub async fn publish_change(&self, change: RecordChange) {
        self.writer.send(Vec::new(), Vec::new(), Some(change)).await;
    }

    /// Changes each time this process could not publish events.
    pub fn dropped_events(&self) -> tokio::sync::watch::Receiver<u64> {
        self.writer.dropped_events()
    }

    /// Waits (at most `within`) until every queued live change is applied.
    pub async fn flush_live(&self, within: std::time::Duration) -> bool {
        self.writer.flush(within).await
    }

    /// Whether the live store took the last write.
    pub fn live_healthy(&self) -> bool {
        self.writer.healthy()
    }

    // ------------------------------------------------------------ phone

    /// An offered call starts the `answer` target of the first policy that
    /// matches phone contacts.
    pub async fn on_call_offered(
        &self,
        conn: &mut AnyConnection,
        record_id: &str,
        queue: &str,
        offered_at: i64,
    ) -> Result<Changes, Error> {
        let cfg = self.config();
        let facts = Facts { record_kind: "phone_contact", channel: "phone", ..Default::default() };
        let Some(policy) = policy::first_match(&cfg.policies, &facts) else { return Ok(Changes::default()) };
        let Some(rule) = policy.rule(Metric::Answer) else { return Ok(Changes::default()) };
        let calendar_id = cfg.calendar_id_of(policy);
        let cal = cfg.calendar(&calendar_id);
        let key = TargetKey { record_id: record_id.to_owned(), metric: Metric::Answer, cycle: 1 };
        if store::get_target(conn, &key).await?.is_some() {
            return Ok(Changes::default());
        }
        let target = Target::start(key, rule, offered_at, None, &cal).map_err(cal_err)?;
        store::put_target(
            conn,
            &TargetRow {
                target: target.clone(),
                policy_id: policy.id.clone(),
                escalation_due_at: None,
                escalated_at: None,
                open: true,
                config_version: cfg.version,
                cap_provisional: false,
                calendar_id,
            },
        )
        .await?;
        Ok(Changes { entries: vec![entry_of(&target, queue, "")], events: vec![] })
    }

    /// Answered: fulfilled (late when past its due time, or when it rang
    /// more often than a policy in rings allows). Abandoned: breached.
    pub async fn on_call_ended(
        &self,
        conn: &mut AnyConnection,
        record_id: &str,
        queue: &str,
        at: i64,
        answered: bool,
        ring_count: i64,
    ) -> Result<Changes, Error> {
        let key = TargetKey { record_id: record_id.to_owned(), metric: Metric::Answer, cycle: 1 };
        let Some(mut row) = store::get_target(conn, &key).await? else { return Ok(Changes::default()) };
        if !row.open {
            return Ok(Changes::default());
        }
        let cfg = self.config();
        let cal = cfg.calendar(&row.calendar_id);
        let mut c = Changes::default();
        let rang_too_long = cfg
            .policy(&row.policy_id)
            .and_then(|p| p.rule(Metric::Answer))
            .is_some_and(|r| r.rang_too_long(ring_count));
        if answered && rang_too_long && row.target.breached_at.is_none() {
            // Too many rings is a miss however few seconds they took.
            let at_breach = row.target.due_at.map_or(at, |d| d.min(at));
            row.target.breached_at = Some(at_breach);
            let ev = routed(
                SlaEvent {
                    id: key.event_id(EventKind::Breached),
                    key: key.clone(),
                    kind: EventKind::Breached,
                    at_ms: at,
                    due_at_ms: row.target.due_at,
                    queue: String::new(),
                    assignee: String::new(),
                },
                queue,
                "",
            );
            if store::insert_event(conn, &ev).await? {
                c.events.push(ev);
            }
        }
        if answered {
            if let Some(ev) = row.target.fulfil(at, &cal).map_err(cal_err)?
                && store::insert_event(conn, &ev).await?
            {
                c.events.push(routed(ev, queue, ""));
            }
        } else {
            let newly = row.target.breached_at.is_none();
            row.target.breached_at = row.target.breached_at.or(Some(at));
            row.target.running_since = None;
            row.target.due_at = None;
            row.target.warn_at = None;
            if newly {
                let mut ev = routed(
                    SlaEvent {
                        id: key.event_id(EventKind::Breached),
                        key: key.clone(),
                        kind: EventKind::Breached,
                        at_ms: at,
                        due_at_ms: None,
                        queue: String::new(),
                        assignee: String::new(),
                    },
                    queue,
                    "",
                );
                ev.due_at_ms = None;
                if store::insert_event(conn, &ev).await? {
                    c.events.push(ev);
                }
            }
        }
        row.open = false;
        store::put_target(conn, &row).await?;
        // Gone from the live view: nothing more can happen to it.
        let mut gone = entry_of(&row.target, queue, "");
        gone.state = kefu_sla::TargetState::Fulfilled;
        c.entries.push(gone);
        Ok(c)
    }
}

/// The cap a filing period puts on a request's resolution counted in
/// `cal`, with `statutory` (the default calendar) for the official table
/// and the statutory rest days when `cal` does not have the date.
pub fn filing_cap_in(cal: &Calendar, statutory: &Calendar, period: &str) -> Result<Option<FilingCap>, Error> {
    if period.is_empty() {
        return Ok(None);
    }
    let (y, m) = domain::filing_period_end(period)?;
    let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    let official = cal.filing_deadline_in(y, m).or_else(|| statutory.filing_deadline_in(y, m));
    let (deadline, provisional) = match official {
        Some(d) => (d, false),
        None => match statutory.provisional_filing_deadline_in(y, m) {
            Some(d) => (d, true),
            None => {
                return Err(Error::FailedPrecondition(format!(
                    "no filing deadline can be set for the period {period}: the calendar has no working day after the 15th of {y}-{m:02}"
                )));
            }
        },
    };
    // The office's close of business on the deadline, or on its last
    // working day before it (an office closed that day files the day before).
    let mut day = deadline;
    let mut cob = None;
    for _ in 0..31 {
        if let Some(c) = cal.close_of_business(day) {
            cob = Some(c);
            break;
        }
        match day.pred_opt() {
            Some(d) => day = d,
            None => break,
        }
    }
    let Some(cob) = cob else {
        return Err(Error::FailedPrecondition(format!(
            "calendar {} has no working day in the month before the filing deadline {deadline}",
            cal.id
        )));
    };
    let cap = cal.sub(cob, cal.filing_lead()).map_err(cal_err)?;
    Ok(Some(FilingCap {
        cap_ms: cap.timestamp_millis(),
        deadline: deadline.format("%Y-%m-%d").to_string(),
        provisional,
    }))
}

fn is_call(record_id: &str) -> bool {
    record_id.starts_with("call:")
}

#[async_trait]
impl DueHandler for SlaEngine {
    async fn handle(&self, claimed: &Claimed, now: i64) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        let Some(mut row) = store::get_target(&mut tx, &claimed.key).await? else {
            tx.commit().await?;
            return Ok(());
        };
        let ticket = if is_call(&claimed.key.record_id) {
            None
        } else {
            store::get_ticket(&mut tx, &claimed.key.record_id).await?
        };
        let (queue, assignee) =
            ticket.as_ref().map_or((String::new(), String::new()), |t| (t.queue.clone(), t.assignee.clone()));
        let cfg = self.config();
        let cal = cfg.calendar(&row.calendar_id);
        let mut changes = Changes::default();
        let second_after = chrono::Duration::seconds(cfg.escalation.second_level_after_secs);
        let event = kefu_sla::store::fire_due(&mut tx, &mut row, claimed.kind, now, |due| {
            cal.add(kefu_sla::target::to_dt(due), second_after).map(|d| d.timestamp_millis()).ok()
        })
        .await?;
        if let Some(ev) = event {
            let due_ref = match claimed.kind {
                DueKind::Warning => row.target.warned_at,
                DueKind::Breach => row.target.breached_at,
            };
            if let Some(d) = due_ref {
                self.metrics.lag.record(((now - d).max(0) as f64) / 1000.0, &[KeyValue::new("kind", ev.kind.as_str())]);
            }
            let ev = routed(ev, &queue, &assignee);
            if store::insert_event(&mut tx, &ev).await? {
                if let Some(mut t) = ticket {
                    self.escalate(&mut tx, &mut t, &ev, &mut changes).await?;
                }
                changes.events.push(ev);
            }
        }
        let (q, a) = match store::get_ticket(&mut tx, &claimed.key.record_id).await? {
            Some(t) => (t.queue, t.assignee),
            None => (queue, assignee),
        };
        // The newest committed state (another writer may have moved it).
        let latest = store::get_target(&mut tx, &claimed.key).await?.map_or(row.target, |r| r.target);
        changes.entries.push(entry_of(&latest, &q, &a));
        tx.commit().await?;
        self.publish(changes).await;
        Ok(())
    }

    async fn rebuild(&self, live: &dyn LiveStore) -> anyhow::Result<usize> {
        kefu_sla::live::rebuild_in_pages(live, |after| async move {
            let mut conn = self.pool.acquire().await?;
            let page = store::open_targets_page(&mut conn, &after, 1000).await?;
            Ok(page.iter().map(|(row, q, a)| entry_of(&row.target, q, a)).collect())
        })
        .await
    }

    async fn overdue(&self, before: i64, limit: usize) -> anyhow::Result<Vec<Claimed>> {
        let mut conn = self.pool.acquire().await?;
        Ok(store::overdue_claims(&mut conn, before, limit, self.live.shards()).await?)
    }

    async fn periodic(&self, now: i64) -> anyhow::Result<usize> {
        // Gauges for dashboards and alerts, from the live store's counts.
        let d = self.live.dashboard(now, 3_600_000).await?;
        for (queue, c) in &d.by_queue {
            let attrs = [KeyValue::new("queue", queue.clone())];
            self.metrics.open.record(c.open, &attrs);
            self.metrics.at_risk.record(c.at_risk, &attrs);
            self.metrics.breached.record(c.breached, &attrs);
        }
        let mut conn = self.pool.acquire().await?;
        let due = store::escalations_due(&mut conn, now, 200).await?;
        drop(conn);
        let mut n = 0;
        for row in due {
            let mut tx = self.pool.begin().await?;
            if store::claim_escalation(&mut tx, &row.target.key, now).await?
                && let Some(t) = store::get_ticket(&mut tx, &row.target.key.record_id).await?
            {
                let body = format!(
                    "SLA 二级升级：{}已超时仍未完成，通知 {}",
                    row.target.key.metric.label_zh(),
                    self.config().escalation.second_level_notify
                );
                store::add_timeline(&mut tx, &t.id, "notification", "sla", &body, now).await?;
                let ev = SlaEvent {
                    id: row.target.key.event_id(EventKind::Escalated),
                    key: row.target.key.clone(),
                    kind: EventKind::Escalated,
                    at_ms: now,
                    due_at_ms: row.target.due_at,
                    queue: t.queue.clone(),
                    assignee: t.assignee.clone(),
                };
                let fresh = store::insert_event(&mut tx, &ev).await?;
                tx.commit().await?;
                if fresh {
                    self.writer.send(Vec::new(), vec![ev], None).await;
                    n += 1;
                }
            } else {
                tx.commit().await?;
            }
        }
        Ok(n)
    }
}

impl SlaEngine {
    /// Escalation on a warning or breach: timeline notifications, and on a
    /// breach the priority rises one level. Filing-bound requests rise on
    /// their warning too (the deadline nears).
    async fn escalate(
        &self,
        conn: &mut AnyConnection,
        t: &mut TicketRow,
        ev: &SlaEvent,
        changes: &mut Changes,
    ) -> Result<(), Error> {
        let rules = &self.config().escalation;
        let now = ev.at_ms;
        let who = |role: &str| -> String {
            match role {
                "assignee" if !t.assignee.is_empty() => format!("处理人 {}", t.assignee),
                "supervisor" => format!("队列 {} 的主管", t.queue),
                other => other.to_owned(),
            }
        };
        let (body, raise) = match ev.kind {
            EventKind::Warning => (
                format!("SLA 预警：{}即将到期，通知 {}", ev.key.metric.label_zh(), who(&rules.warning_notify)),
                !t.filing_period.is_empty() && ev.key.metric == Metric::Resolution,
            ),
            EventKind::Breached => (
                format!("SLA 超时：{}已超时，通知 {}", ev.key.metric.label_zh(), who(&rules.breach_notify)),
                rules.breach_raises_priority,
            ),
            _ => return Ok(()),
        };
        store::add_timeline(conn, &t.id, "notification", "sla", &body, now).await?;
        if raise {
            let before = t.priority;
            t.priority = domain::raise(t.priority);
            if t.priority != before {
                store::save_ticket(conn, t).await?;
                store::add_timeline(
                    conn,
                    &t.id,
                    "notification",
                    "sla",
                    &format!("优先级提升为{}", domain::zh::<pb::Priority>(t.priority)),
                    now,
                )
                .await?;
                changes.merge(self.on_rematch(conn, t).await?);
            }
        }
        Ok(())
    }
}
