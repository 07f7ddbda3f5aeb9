//! Complaint deadlines as SLA targets in the firm's business time:
//! acknowledgement, preliminary opinion and resolution of each complaint
//! (a referral's reply deadline bounds them, as a filing deadline bounds a
//! tax-filing request), and each corrective action's due date. Durations
//! come from the SLA policies whose record kinds include "complaint" —
//! the firm's one SLA configuration, owned by the tickets service and read
//! from it (`GetSlaConfig`); the last one read is kept here, so deadlines
//! are computed while tickets is unreachable. The database is the record;
//! the live store (its own Redis prefix, or memory) is told after commit,
//! and the sweeper fires warnings, breaches and escalations exactly once.
use std::{
    collections::BTreeMap,
    sync::{Arc, RwLock, atomic::AtomicBool},
};

use async_trait::async_trait;
use chrono::TimeZone;
use kefu_kit::{Error, client::CallContext};
use kefu_proto::{
    complaints::v1 as pb,
    tickets::v1::{self as tpb, ticket_service_client::TicketServiceClient},
};
use kefu_sla::{
    Calendar, Changes, Claimed, Clock, ClockKind, ConfigDocument, DueHandler, EventKind, Facts, LiveEntry, LiveStore,
    LiveWriter, Metric, MetricRule, Policy, SlaEvent, Target, TargetKey, policy,
    store::{self as sla_store, TargetRow},
};
use sqlx::{AnyConnection, AnyPool};

use crate::store::{self, ActionRow, ComplaintRow, HistoryRow};

/// The live-store queue of complaints' own deadlines.
pub const QUEUE_COMPLAINTS: &str = "complaints";
/// The live-store queue of corrective actions' due dates.
pub const QUEUE_ACTIONS: &str = "corrective_actions";
/// The policy id recorded on corrective actions' targets (their due date is
/// set by whoever adds the action, not by a policy).
const ACTION_POLICY: &str = "corrective-action-due-date";
const SETTING: &str = "sla_config";

/// The record id of a corrective action's target: `complaint/action`.
pub fn action_record(complaint_id: &str, action_id: &str) -> String {
    format!("{complaint_id}/{action_id}")
}

/// A target's complaint, and its corrective action if it times one.
pub fn split_record(record_id: &str) -> (&str, Option<&str>) {
    match record_id.split_once('/') {
        Some((c, a)) => (c, Some(a)),
        None => (record_id, None),
    }
}

/// Chinese names of the deadlines, for the history people read.
pub fn metric_label(m: Metric) -> &'static str {
    match m {
        Metric::Acknowledgement => "受理确认",
        Metric::PreliminaryOpinion => "初步处理意见",
        Metric::Resolution => "投诉办结",
        Metric::CorrectiveAction => "纠正措施",
        _ => "时限",
    }
}

fn severity_name(s: i64) -> &'static str {
    match pb::Severity::try_from(s as i32) {
        Ok(pb::Severity::Low) => "low",
        Ok(pb::Severity::High) => "high",
        Ok(pb::Severity::Critical) => "critical",
        _ => "medium",
    }
}

fn source_name(s: i64) -> &'static str {
    match pb::ComplaintSource::try_from(s as i32) {
        Ok(pb::ComplaintSource::RegulatorReferral) => "regulator_referral",
        Ok(pb::ComplaintSource::HotlineReferral) => "hotline_referral",
        Ok(pb::ComplaintSource::TicketEscalation) => "ticket_escalation",
        _ => "customer",
    }
}

/// The SLA configuration in use, with its calendars built.
pub struct Loaded {
    pub doc: ConfigDocument,
    calendars: BTreeMap<String, Arc<Calendar>>,
}

impl Loaded {
    fn from_doc(doc: ConfigDocument) -> anyhow::Result<Self> {
        let mut calendars = BTreeMap::new();
        for spec in &doc.calendars {
            calendars.insert(spec.id.clone(), Arc::new(Calendar::from_spec(spec.clone())?));
        }
        Ok(Self { doc, calendars })
    }

    /// What a firm starts with (SLA.md), until the tickets service answers.
    fn defaults() -> anyhow::Result<Self> {
        let cal = Calendar::china_default()?;
        let doc = ConfigDocument {
            version: 0,
            default_calendar: cal.id.clone(),
            calendars: vec![cal.spec().clone()],
            policies: policy::default_policies(&cal),
            escalation: kefu_sla::EscalationRules::default(),
        };
        Self::from_doc(doc)
    }

    /// A calendar by id; empty or unknown: the default one.
    pub fn calendar(&self, id: &str) -> Arc<Calendar> {
        self.calendars
            .get(id)
            .or_else(|| self.calendars.get(&self.doc.default_calendar))
            .or_else(|| self.calendars.values().next())
            .cloned()
            .unwrap_or_else(|| Arc::new(Calendar::always_open()))
    }

    fn calendar_id_of(&self, p: &Policy) -> String {
        if !p.calendar_id.is_empty() && self.calendars.contains_key(&p.calendar_id) {
            p.calendar_id.clone()
        } else {
            self.doc.default_calendar.clone()
        }
    }

    /// The first policy for complaints matching the complaint's facts.
    fn policy_for(&self, c: &ComplaintRow) -> Option<&Policy> {
        let facts = Facts {
            record_kind: "complaint",
            channel: kefu_kit::channel::channel_name(c.channel),
            category: &c.category,
            priority: severity_name(c.severity),
            tier: "",
            source: source_name(c.source),
        };
        policy::first_match(&self.doc.policies, &facts)
    }
}

fn cal_err(e: kefu_sla::CalendarError) -> Error {
    kefu_sla::calendar::to_error(e)
}

fn entry_of(t: &Target, queue: &str, assignee: &str) -> LiveEntry {
    LiveEntry::of(t, queue, assignee)
}

fn routed(e: SlaEvent, queue: &str, assignee: &str) -> SlaEvent {
    e.routed(queue, assignee)
}

fn queue_of(key: &TargetKey) -> &'static str {
    if key.metric == Metric::CorrectiveAction { QUEUE_ACTIONS } else { QUEUE_COMPLAINTS }
}

pub struct Deadlines {
    pool: AnyPool,
    pub live: Arc<dyn LiveStore>,
    pub clock: Arc<dyn Clock>,
    config: RwLock<Arc<Loaded>>,
    /// Set when a live-store write failed: the sweeper rebuilds.
    pub rebuild_flag: Arc<AtomicBool>,
    writer: LiveWriter,
    tickets: tonic::transport::Channel,
    token: kefu_kit::module::ServiceTokens,
    zone: chrono_tz::Tz,
}

impl Deadlines {
    /// Starts with the configuration last read from tickets (or SLA.md's
    /// defaults on first start); [`Deadlines::refresh`] reads it anew.
    pub async fn load(
        pool: AnyPool,
        live: Arc<dyn LiveStore>,
        clock: Arc<dyn Clock>,
        tickets: tonic::transport::Channel,
        token: kefu_kit::module::ServiceTokens,
    ) -> anyhow::Result<Self> {
        let mut conn = pool.acquire().await?;
        let loaded = match store::get_setting(&mut conn, SETTING).await? {
            Some(json) => match serde_json::from_str::<ConfigDocument>(&json).map_err(anyhow::Error::from) {
                Ok(doc) => Loaded::from_doc(doc)?,
                Err(e) => {
                    tracing::warn!(error = %e, "the stored SLA configuration is unreadable; using the defaults");
                    Loaded::defaults()?
                }
            },
            None => Loaded::defaults()?,
        };
        drop(conn);
        // A new process rebuilds the live view on its first sweep.
        let rebuild_flag = Arc::new(AtomicBool::new(true));
        let writer = LiveWriter::spawn(live.clone(), rebuild_flag.clone());
        Ok(Self {
            pool,
            live,
            clock,
            config: RwLock::new(Arc::new(loaded)),
            rebuild_flag,
            writer,
            tickets,
            token,
            zone: chrono_tz::Asia::Shanghai,
        })
    }

    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn config(&self) -> Arc<Loaded> {
        self.config.read().map_or_else(|p| p.into_inner().clone(), |c| c.clone())
    }

    /// Reads the SLA configuration from the tickets service and keeps it;
    /// true when it changed. New deadlines use it; running ones keep the
    /// due times they were given.
    pub async fn refresh(&self) -> Result<bool, Error> {
        let token = (self.token)().map_err(Error::Internal)?;
        let mut client = TicketServiceClient::with_interceptor(self.tickets.clone(), CallContext::new(Some(&token))?);
        let call = client.get_sla_config(tpb::GetSlaConfigRequest {});
        let got = kefu_kit::client::within(kefu_kit::client::PEER_DEADLINE, call)
            .await
            .map_err(|s| Error::from_peer("tickets", &s))?;
        let current = self.config();
        if got.version == current.doc.version && current.doc.version != 0 {
            return Ok(false);
        }
        let doc: ConfigDocument = serde_json::from_str(&got.document)
            .map_err(|e| Error::Internal(anyhow::anyhow!("the SLA configuration of tickets is unreadable: {e}")))?;
        let loaded = Loaded::from_doc(doc).map_err(Error::Internal)?;
        let mut conn = self.pool.acquire().await?;
        store::put_setting(&mut conn, SETTING, &got.document).await?;
        if let Ok(mut g) = self.config.write() {
            *g = Arc::new(loaded);
        }
        Ok(true)
    }

    /// Follows the SLA configuration every `every`.
    pub async fn follow(self: Arc<Self>, every: std::time::Duration, stop: tokio_util::sync::CancellationToken) {
        let mut tick = tokio::time::interval(every);
        let mut failing = false;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => match self.refresh().await {
                    Ok(changed) => {
                        if changed {
                            tracing::info!("SLA configuration read from tickets: complaint deadlines follow it");
                        }
                        failing = false;
                    }
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!(error = %e, "could not read the SLA configuration from tickets; using the last one read");
                    }
                    Err(_) => {}
                },
            }
        }
    }

    /// Starts the target of `metric` for the complaint, if its policy has one.
    async fn start(
        &self,
        conn: &mut AnyConnection,
        c: &ComplaintRow,
        metric: Metric,
        cycle: i64,
        at: i64,
    ) -> Result<Changes, Error> {
        let cfg = self.config();
        let Some(policy) = cfg.policy_for(c) else { return Ok(Changes::default()) };
        let Some(rule) = policy.rule(metric) else { return Ok(Changes::default()) };
        let calendar_id = cfg.calendar_id_of(policy);
        let cal = cfg.calendar(&calendar_id);
        let key = TargetKey { record_id: c.id.clone(), metric, cycle };
        if sla_store::get_target(conn, &key).await?.is_some() {
            return Ok(Changes::default());
        }
        let target = Target::start(key, rule, at, c.referral_due_at, &cal).map_err(cal_err)?;
        sla_store::put_target(
            conn,
            &TargetRow {
                target: target.clone(),
                policy_id: policy.id.clone(),
                escalation_due_at: None,
                escalated_at: None,
                open: true,
                config_version: cfg.doc.version,
                cap_provisional: false,
                calendar_id,
            },
        )
        .await?;
        Ok(Changes { entries: vec![entry_of(&target, QUEUE_COMPLAINTS, &c.handler)], events: vec![] })
    }

    /// Applies `f` to each open target of the complaint (not its actions)
    /// whose metric is in `metrics`.
    async fn each_open(
        &self,
        conn: &mut AnyConnection,
        c: &ComplaintRow,
        metrics: &[Metric],
        f: impl Fn(&mut Target, &Calendar, i64) -> Result<Option<SlaEvent>, kefu_sla::CalendarError>,
    ) -> Result<Changes, Error> {
        let now = self.now();
        let cfg = self.config();
        let mut changes = Changes::default();
        for mut row in sla_store::targets_of(conn, &c.id).await? {
            if !row.open || !metrics.contains(&row.target.key.metric) {
                continue;
            }
            let cal = cfg.calendar(&row.calendar_id);
            let ev = f(&mut row.target, &cal, now).map_err(cal_err)?;
            row.open = !row.target.is_finished();
            sla_store::put_target(conn, &row).await?;
            changes.entries.push(entry_of(&row.target, QUEUE_COMPLAINTS, &c.handler));
            if let Some(ev) = ev {
                let ev = routed(ev, QUEUE_COMPLAINTS, &c.handler);
                if sla_store::insert_event(conn, &ev).await? {
                    changes.events.push(ev);
                }
            }
        }
        Ok(changes)
    }

    /// A new complaint: its three deadlines, counted from its receipt.
    pub async fn on_recorded(&self, conn: &mut AnyConnection, c: &ComplaintRow) -> Result<Changes, Error> {
        let at = c.received_at.min(self.now());
        let mut ch = self.start(conn, c, Metric::Acknowledgement, 1, at).await?;
        ch.merge(self.start(conn, c, Metric::PreliminaryOpinion, 1, at).await?);
        ch.merge(self.start(conn, c, Metric::Resolution, 1 + c.reopen_count, at).await?);
        Ok(ch)
    }

    /// A workflow step: acknowledgement and opinion fulfil theirs; a
    /// proposed response waits on the customer (resolution pauses until they
    /// answer); closing fulfils what is open; reopening starts a new
    /// resolution cycle.
    pub async fn on_transition(
        &self,
        conn: &mut AnyConnection,
        c: &ComplaintRow,
        from: pb::ComplaintState,
        action: pb::ComplaintAction,
    ) -> Result<Changes, Error> {
        use pb::ComplaintAction as A;
        let fulfil = |t: &mut Target, cal: &Calendar, now: i64| t.fulfil(now, cal);
        let mut ch = Changes::default();
        if from == pb::ComplaintState::ResponseProposed {
            ch.merge(self.each_open(conn, c, &[Metric::Resolution], |t, cal, now| t.resume(now, cal)).await?);
        }
        match action {
            A::Acknowledge => ch.merge(self.each_open(conn, c, &[Metric::Acknowledgement], fulfil).await?),
            A::GivePreliminaryOpinion => {
                ch.merge(self.each_open(conn, c, &[Metric::Acknowledgement, Metric::PreliminaryOpinion], fulfil).await?)
            }
            A::ProposeResponse => {
                ch.merge(self.each_open(conn, c, &[Metric::Resolution], |t, cal, now| t.pause(now, cal)).await?);
            }
            A::Close => ch.merge(
                self.each_open(
                    conn,
                    c,
                    &[Metric::Acknowledgement, Metric::PreliminaryOpinion, Metric::Resolution],
                    fulfil,
                )
                .await?,
            ),
            A::Reopen => {
                let now = self.now();
                ch.merge(self.start(conn, c, Metric::Resolution, 1 + c.reopen_count, now).await?);
            }
            _ => {}
        }
        Ok(ch)
    }

    /// A corrective action's due date: the close of business that day in
    /// the complaint's calendar (the end of the day when that has passed).
    pub async fn on_action_added(
        &self,
        conn: &mut AnyConnection,
        c: &ComplaintRow,
        a: &ActionRow,
    ) -> Result<Changes, Error> {
        let cfg = self.config();
        let calendar_id = cfg.policy_for(c).map_or_else(|| cfg.doc.default_calendar.clone(), |p| cfg.calendar_id_of(p));
        let cal = cfg.calendar(&calendar_id);
        let now = self.now();
        let day = chrono::NaiveDate::parse_from_str(&a.due_date, "%Y-%m-%d")
            .map_err(|_| Error::Internal(anyhow::anyhow!("stored due date {:?}", a.due_date)))?;
        let end_of_day = day
            .and_hms_milli_opt(23, 59, 59, 999)
            .and_then(|t| self.zone.from_local_datetime(&t).earliest())
            .map_or(now, |t| t.timestamp_millis());
        let due = cal.close_of_business(day).map(|t| t.timestamp_millis()).filter(|d| *d > now).unwrap_or(end_of_day);
        let rule = MetricRule {
            metric: Metric::CorrectiveAction,
            duration_secs: ((due - now) / 1000).max(1),
            clock: ClockKind::Calendar,
            warn_percent: 80,
            rings: None,
            seconds_per_ring: None,
        };
        let key = TargetKey { record_id: action_record(&c.id, &a.id), metric: Metric::CorrectiveAction, cycle: 1 };
        let target = Target::start(key, &rule, now, Some(due), &cal).map_err(cal_err)?;
        sla_store::put_target(
            conn,
            &TargetRow {
                target: target.clone(),
                policy_id: ACTION_POLICY.into(),
                escalation_due_at: None,
                escalated_at: None,
                open: true,
                config_version: cfg.doc.version,
                cap_provisional: false,
                calendar_id,
            },
        )
        .await?;
        Ok(Changes { entries: vec![entry_of(&target, QUEUE_ACTIONS, &a.owner)], events: vec![] })
    }

    /// The action is done: its deadline is met (late when past its due date).
    pub async fn on_action_completed(&self, conn: &mut AnyConnection, a: &ActionRow) -> Result<Changes, Error> {
        let key =
            TargetKey { record_id: action_record(&a.complaint_id, &a.id), metric: Metric::CorrectiveAction, cycle: 1 };
        let Some(mut row) = sla_store::get_target(conn, &key).await? else { return Ok(Changes::default()) };
        if !row.open {
            return Ok(Changes::default());
        }
        let cal = self.config().calendar(&row.calendar_id);
        let ev = row.target.fulfil(self.now(), &cal).map_err(cal_err)?;
        row.open = !row.target.is_finished();
        sla_store::put_target(conn, &row).await?;
        let mut ch = Changes { entries: vec![entry_of(&row.target, QUEUE_ACTIONS, &a.owner)], events: vec![] };
        if let Some(ev) = ev {
            let ev = routed(ev, QUEUE_ACTIONS, &a.owner);
            if sla_store::insert_event(conn, &ev).await? {
                ch.events.push(ev);
            }
        }
        Ok(ch)
    }

    /// Tells the live store and watchers, off the request path.
    pub async fn publish(&self, changes: Changes) {
        self.writer.send(changes.entries, changes.events, None).await;
    }

    pub fn dropped_events(&self) -> tokio::sync::watch::Receiver<u64> {
        self.writer.dropped_events()
    }

    pub fn live_healthy(&self) -> bool {
        self.writer.healthy()
    }

    pub async fn flush_live(&self, within: std::time::Duration) -> bool {
        self.writer.flush(within).await
    }

    /// Who is told, in the words of the history.
    fn who(role: &str, handler: &str) -> String {
        match role {
            "assignee" if !handler.is_empty() => format!("处理人 {handler}"),
            "supervisor" | "assignee" => "投诉主管".into(),
            "manager" => "客服经理".into(),
            other => other.to_owned(),
        }
    }

    /// The history note of an event, and whether it escalates the complaint.
    fn note_of(&self, ev: &SlaEvent, routed_to: &str) -> Option<(String, bool)> {
        let rules = &self.config().doc.escalation;
        let what = metric_label(ev.key.metric);
        let due = ev
            .due_at_ms
            .and_then(|d| self.zone.timestamp_millis_opt(d).single())
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default();
        match ev.kind {
            EventKind::Warning => Some((
                format!(
                    "时限预警：{what}将于 {due}（北京时间）到期，已通知{}",
                    Self::who(&rules.warning_notify, routed_to)
                ),
                false,
            )),
            EventKind::Breached => Some((
                format!(
                    "时限超时：{what}已于 {due}（北京时间）到期未完成，已升级并通知{}",
                    Self::who(&rules.breach_notify, routed_to)
                ),
                true,
            )),
            EventKind::Escalated => Some((
                format!("二级升级：{what}超时仍未完成，已通知{}", Self::who(&rules.second_level_notify, routed_to)),
                true,
            )),
            _ => None,
        }
    }

    /// Writes an event's note in the complaint's history and, for a breach
    /// or an escalation, raises its escalation level.
    async fn record_event(&self, conn: &mut AnyConnection, ev: &SlaEvent, routed_to: &str) -> Result<(), Error> {
        let (complaint_id, _) = split_record(&ev.key.record_id);
        let Some(mut c) = store::get(conn, complaint_id).await? else { return Ok(()) };
        let Some((reason, escalates)) = self.note_of(ev, routed_to) else { return Ok(()) };
        if escalates {
            c.escalation_level += 1;
            c.updated_at = ev.at_ms;
            store::save(conn, &mut c).await?;
        }
        store::add_history(
            conn,
            &HistoryRow {
                seq: 0,
                complaint_id: c.id.clone(),
                from_state: c.state,
                to_state: c.state,
                action: 0,
                actor: "kefu".into(),
                actor_role: "sla".into(),
                reason,
                at: ev.at_ms,
            },
        )
        .await
    }

    /// Who a target is routed to: the action's owner, or the complaint's handler.
    async fn routed_to(&self, conn: &mut AnyConnection, key: &TargetKey) -> Result<String, Error> {
        let (complaint_id, action) = split_record(&key.record_id);
        Ok(match action {
            Some(a) => store::get_action(conn, a).await?.map(|a| a.owner).unwrap_or_default(),
            None => store::get(conn, complaint_id).await?.map(|c| c.handler).unwrap_or_default(),
        })
    }
}

#[async_trait]
impl DueHandler for Deadlines {
    async fn handle(&self, claimed: &Claimed, now: i64) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        let Some(mut row) = sla_store::get_target(&mut tx, &claimed.key).await? else {
            tx.commit().await?;
            return Ok(());
        };
        let routed_to = self.routed_to(&mut tx, &claimed.key).await?;
        let queue = queue_of(&claimed.key);
        let cfg = self.config();
        let cal = cfg.calendar(&row.calendar_id);
        let second_after = chrono::Duration::seconds(cfg.doc.escalation.second_level_after_secs);
        let event = sla_store::fire_due(&mut tx, &mut row, claimed.kind, now, |due| {
            cal.add(kefu_sla::target::to_dt(due), second_after).map(|d| d.timestamp_millis()).ok()
        })
        .await?;
        let mut changes = Changes::default();
        if let Some(ev) = event {
            let ev = routed(ev, queue, &routed_to);
            if sla_store::insert_event(&mut tx, &ev).await? {
                self.record_event(&mut tx, &ev, &routed_to).await?;
                changes.events.push(ev);
            }
        }
        let latest = sla_store::get_target(&mut tx, &claimed.key).await?.map_or(row.target, |r| r.target);
        changes.entries.push(entry_of(&latest, queue, &routed_to));
        tx.commit().await?;
        self.publish(changes).await;
        Ok(())
    }

    async fn rebuild(&self, live: &dyn LiveStore) -> anyhow::Result<usize> {
        kefu_sla::live::rebuild_in_pages(live, |after| async move {
            let mut conn = self.pool.acquire().await?;
            let page = store::open_targets_page(&mut conn, &after, 1000).await?;
            Ok(page.iter().map(|(row, to)| entry_of(&row.target, queue_of(&row.target.key), to)).collect())
        })
        .await
    }

    async fn overdue(&self, before: i64, limit: usize) -> anyhow::Result<Vec<Claimed>> {
        let mut conn = self.pool.acquire().await?;
        Ok(sla_store::overdue_claims(&mut conn, before, limit, self.live.shards()).await?)
    }

    /// Second-level escalation of breaches still open.
    async fn periodic(&self, now: i64) -> anyhow::Result<usize> {
        let mut conn = self.pool.acquire().await?;
        let due = sla_store::escalations_due(&mut conn, now, 200).await?;
        drop(conn);
        let mut n = 0;
        for row in due {
            let mut tx = self.pool.begin().await?;
            if !sla_store::claim_escalation(&mut tx, &row.target.key, now).await? {
                tx.commit().await?;
                continue;
            }
            let routed_to = self.routed_to(&mut tx, &row.target.key).await?;
            let ev = SlaEvent {
                id: row.target.key.event_id(EventKind::Escalated),
                key: row.target.key.clone(),
                kind: EventKind::Escalated,
                at_ms: now,
                due_at_ms: row.target.due_at,
                queue: queue_of(&row.target.key).to_owned(),
                assignee: routed_to.clone(),
            };
            let fresh = sla_store::insert_event(&mut tx, &ev).await?;
            if fresh {
                self.record_event(&mut tx, &ev, &routed_to).await?;
            }
            tx.commit().await?;
            if fresh {
                self.writer.send(Vec::new(), vec![ev], None).await;
                n += 1;
            }
        }
        Ok(n)
    }
}
