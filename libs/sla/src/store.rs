//! The durable record of SLA targets and events, in the database of the
//! service that owns them (tables `sla_targets` and `sla_events`; the live
//! view in Redis or memory is rebuilt from it). Portable SQL (SQLite and
//! PostgreSQL); every claim that fires an event is a conditional update, so
//! each warning, breach and escalation happens once.
use kefu_kit::Error;

use crate::{Claimed, ClockKind, DueKind, Metric, SlaEvent, Target, TargetKey};
use sqlx::{AnyConnection, Row, any::AnyRow};

/// `sla_targets.open` of a target that can still warn, breach or be fulfilled.
pub const OPEN: i64 = 1;
/// `sla_targets.open` of a finished target (fulfilled, or a call that ended).
pub const FINISHED: i64 = 0;

pub const TARGET_COLUMNS: &str = "record_id, metric, cycle, policy_id, clock, duration_ms, warn_percent, started_at, \
    consumed_ms, running_since, cap_at, due_at, warn_at, warned_at, breached_at, fulfilled_at, escalation_due_at, escalated_at, open, config_version, cap_provisional, calendar_id";

#[derive(Debug, Clone)]
pub struct TargetRow {
    pub target: Target,
    pub policy_id: String,
    pub escalation_due_at: Option<i64>,
    pub escalated_at: Option<i64>,
    pub open: bool,
    /// The configuration version its due times were computed under.
    pub config_version: i64,
    /// Its cap comes from a provisional filing deadline.
    pub cap_provisional: bool,
    /// The calendar its business time counts in.
    pub calendar_id: String,
}

fn clock_name(c: ClockKind) -> &'static str {
    match c {
        ClockKind::Business => "business",
        ClockKind::Calendar => "calendar",
    }
}

pub fn target_from_row(r: &AnyRow) -> Result<TargetRow, Error> {
    let metric: String = r.try_get("metric")?;
    let metric = Metric::parse(&metric).ok_or_else(|| Error::Internal(anyhow::anyhow!("unknown metric {metric:?}")))?;
    let clock: String = r.try_get("clock")?;
    Ok(TargetRow {
        target: Target {
            key: TargetKey { record_id: r.try_get("record_id")?, metric, cycle: r.try_get("cycle")? },
            clock: if clock == "calendar" { ClockKind::Calendar } else { ClockKind::Business },
            duration_ms: r.try_get("duration_ms")?,
            warn_percent: u8::try_from(r.try_get::<i64, _>("warn_percent")?).unwrap_or(80),
            started_at: r.try_get("started_at")?,
            consumed_ms: r.try_get("consumed_ms")?,
            running_since: r.try_get("running_since")?,
            cap_at: r.try_get("cap_at")?,
            due_at: r.try_get("due_at")?,
            warn_at: r.try_get("warn_at")?,
            warned_at: r.try_get("warned_at")?,
            breached_at: r.try_get("breached_at")?,
            fulfilled_at: r.try_get("fulfilled_at")?,
        },
        policy_id: r.try_get("policy_id")?,
        escalation_due_at: r.try_get("escalation_due_at")?,
        escalated_at: r.try_get("escalated_at")?,
        open: r.try_get::<i64, _>("open")? == OPEN,
        config_version: r.try_get("config_version")?,
        cap_provisional: r.try_get::<i64, _>("cap_provisional")? != 0,
        calendar_id: r.try_get("calendar_id")?,
    })
}

/// Inserts or replaces a target's durable state.
pub async fn put_target(conn: &mut AnyConnection, row: &TargetRow) -> Result<(), Error> {
    let t = &row.target;
    sqlx::query(
        "INSERT INTO sla_targets (record_id, metric, cycle, policy_id, clock, duration_ms, warn_percent, started_at, \
         consumed_ms, running_since, cap_at, due_at, warn_at, warned_at, breached_at, fulfilled_at, escalation_due_at, escalated_at, open, \
         config_version, cap_provisional, calendar_id) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22) \
         ON CONFLICT (record_id, metric, cycle) DO UPDATE SET policy_id = excluded.policy_id, clock = excluded.clock, \
         duration_ms = excluded.duration_ms, warn_percent = excluded.warn_percent, consumed_ms = excluded.consumed_ms, \
         running_since = excluded.running_since, cap_at = excluded.cap_at, due_at = excluded.due_at, warn_at = excluded.warn_at, \
         warned_at = excluded.warned_at, breached_at = excluded.breached_at, fulfilled_at = excluded.fulfilled_at, \
         escalation_due_at = excluded.escalation_due_at, escalated_at = excluded.escalated_at, open = excluded.open, \
         config_version = excluded.config_version, cap_provisional = excluded.cap_provisional, calendar_id = excluded.calendar_id",
    )
    .bind(&t.key.record_id)
    .bind(t.key.metric.as_str())
    .bind(t.key.cycle)
    .bind(&row.policy_id)
    .bind(clock_name(t.clock))
    .bind(t.duration_ms)
    .bind(i64::from(t.warn_percent))
    .bind(t.started_at)
    .bind(t.consumed_ms)
    .bind(t.running_since)
    .bind(t.cap_at)
    .bind(t.due_at)
    .bind(t.warn_at)
    .bind(t.warned_at)
    .bind(t.breached_at)
    .bind(t.fulfilled_at)
    .bind(row.escalation_due_at)
    .bind(row.escalated_at)
    .bind(if row.open { OPEN } else { FINISHED })
    .bind(row.config_version)
    .bind(i64::from(row.cap_provisional))
    .bind(&row.calendar_id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn targets_of(conn: &mut AnyConnection, record_id: &str) -> Result<Vec<TargetRow>, Error> {
    let sql = format!("SELECT {TARGET_COLUMNS} FROM sla_targets WHERE record_id = $1 ORDER BY metric, cycle");
    let rows = sqlx::query(&sql).bind(record_id).fetch_all(conn).await?;
    rows.iter().map(target_from_row).collect()
}

/// The targets of several records in one query (a page of a list), by
/// record id, each record's in (metric, cycle) order.
pub async fn targets_of_many(
    conn: &mut AnyConnection,
    record_ids: &[&str],
) -> Result<std::collections::HashMap<String, Vec<TargetRow>>, Error> {
    let mut out: std::collections::HashMap<String, Vec<TargetRow>> = std::collections::HashMap::new();
    if record_ids.is_empty() {
        return Ok(out);
    }
    let mut w = kefu_kit::db::Where::new();
    w.any_of("record_id", record_ids.iter().map(|id| (*id).to_owned()));
    let (clause, binds) = w.build();
    let sql = format!("SELECT {TARGET_COLUMNS} FROM sla_targets WHERE {clause} ORDER BY record_id, metric, cycle");
    for row in kefu_kit::db::fetch_rows(conn, &sql, binds).await? {
        let t = target_from_row(&row)?;
        out.entry(t.target.key.record_id.clone()).or_default().push(t);
    }
    Ok(out)
}

pub async fn get_target(conn: &mut AnyConnection, key: &TargetKey) -> Result<Option<TargetRow>, Error> {
    let sql = format!("SELECT {TARGET_COLUMNS} FROM sla_targets WHERE record_id = $1 AND metric = $2 AND cycle = $3");
    let row =
        sqlx::query(&sql).bind(&key.record_id).bind(key.metric.as_str()).bind(key.cycle).fetch_optional(conn).await?;
    row.as_ref().map(target_from_row).transpose()
}

/// Open targets computed under a configuration older than `version`, after
/// the cursor `after` (record, metric, cycle) in key order, at most `limit`
/// (what a configuration change recomputes, page by page).
pub async fn stale_targets(
    conn: &mut AnyConnection,
    version: i64,
    after: &(String, String, i64),
    limit: i64,
) -> Result<Vec<TargetKey>, Error> {
    let rows = sqlx::query(&format!(
        "SELECT record_id, metric, cycle FROM sla_targets \
         WHERE open = {OPEN} AND config_version < $1 AND (record_id, metric, cycle) > ($2, $3, $4) \
         ORDER BY record_id, metric, cycle LIMIT {limit}"
    ))
    .bind(version)
    .bind(&after.0)
    .bind(&after.1)
    .bind(after.2)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            let metric: String = r.try_get(1)?;
            Ok(TargetKey {
                record_id: r.try_get(0)?,
                metric: Metric::parse(&metric)
                    .ok_or_else(|| Error::Internal(anyhow::anyhow!("unknown metric {metric:?}")))?,
                cycle: r.try_get(2)?,
            })
        })
        .collect()
}

/// Marks a target as looked at under `version` (one that cannot be
/// recomputed keeps its times and is not tried again on every pass).
pub async fn mark_config_version(conn: &mut AnyConnection, key: &TargetKey, version: i64) -> Result<(), Error> {
    sqlx::query(
        "UPDATE sla_targets SET config_version = $4 \
         WHERE record_id = $1 AND metric = $2 AND cycle = $3 AND config_version < $4",
    )
    .bind(&key.record_id)
    .bind(key.metric.as_str())
    .bind(key.cycle)
    .bind(version)
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes a recomputed target's times only if the target is as `before`
/// was read (open, not breached or fulfilled, the same clock use and
/// warning): a concurrent writer's change is never overwritten.
pub async fn recompute_target(conn: &mut AnyConnection, row: &TargetRow, before: &TargetRow) -> Result<bool, Error> {
    let (t, b) = (&row.target, &before.target);
    let n = sqlx::query(
        "UPDATE sla_targets SET policy_id = $4, clock = $5, duration_ms = $6, warn_percent = $7, consumed_ms = $8, \
         running_since = $9, cap_at = $10, due_at = $11, warn_at = $12, config_version = $13, cap_provisional = $14, \
         calendar_id = $15 \
         WHERE record_id = $1 AND metric = $2 AND cycle = $3 AND open = 1 AND fulfilled_at IS NULL \
         AND COALESCE(breached_at, -1) = $16 AND COALESCE(warned_at, -1) = $17 AND consumed_ms = $18 \
         AND COALESCE(running_since, -1) = $19 AND config_version = $20",
    )
    .bind(&t.key.record_id)
    .bind(t.key.metric.as_str())
    .bind(t.key.cycle)
    .bind(&row.policy_id)
    .bind(clock_name(t.clock))
    .bind(t.duration_ms)
    .bind(i64::from(t.warn_percent))
    .bind(t.consumed_ms)
    .bind(t.running_since)
    .bind(t.cap_at)
    .bind(t.due_at)
    .bind(t.warn_at)
    .bind(row.config_version)
    .bind(i64::from(row.cap_provisional))
    .bind(&row.calendar_id)
    .bind(b.breached_at.unwrap_or(-1))
    .bind(b.warned_at.unwrap_or(-1))
    .bind(b.consumed_ms)
    .bind(b.running_since.unwrap_or(-1))
    .bind(before.config_version)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Records a breach only if none was recorded: the arbiter of "exactly once".
pub async fn claim_breach(
    conn: &mut AnyConnection,
    key: &TargetKey,
    breached_at: i64,
    escalation_due_at: Option<i64>,
) -> Result<bool, Error> {
    let done = sqlx::query(
        "UPDATE sla_targets SET breached_at = $1, warn_at = NULL, escalation_due_at = $2 \
         WHERE record_id = $3 AND metric = $4 AND cycle = $5 AND breached_at IS NULL AND fulfilled_at IS NULL \
         AND running_since IS NOT NULL AND due_at IS NOT NULL AND due_at <= $6",
    )
    .bind(breached_at)
    .bind(escalation_due_at)
    .bind(&key.record_id)
    .bind(key.metric.as_str())
    .bind(key.cycle)
    .bind(breached_at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn claim_warning(conn: &mut AnyConnection, key: &TargetKey, now: i64) -> Result<bool, Error> {
    let done = sqlx::query(
        "UPDATE sla_targets SET warned_at = $1, warn_at = NULL \
         WHERE record_id = $2 AND metric = $3 AND cycle = $4 AND warned_at IS NULL AND breached_at IS NULL \
         AND fulfilled_at IS NULL AND running_since IS NOT NULL AND warn_at IS NOT NULL AND warn_at <= $5",
    )
    .bind(now)
    .bind(&key.record_id)
    .bind(key.metric.as_str())
    .bind(key.cycle)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn claim_escalation(conn: &mut AnyConnection, key: &TargetKey, now: i64) -> Result<bool, Error> {
    let done = sqlx::query(
        "UPDATE sla_targets SET escalated_at = $1 WHERE record_id = $2 AND metric = $3 AND cycle = $4 \
         AND escalated_at IS NULL AND escalation_due_at IS NOT NULL AND escalation_due_at <= $5 AND fulfilled_at IS NULL",
    )
    .bind(now)
    .bind(&key.record_id)
    .bind(key.metric.as_str())
    .bind(key.cycle)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Running targets whose breach (`breaches`) or warning (otherwise) fell
/// due at or before `before` and has not been recorded: the sweeper's
/// safety net, independent of the live view. Oldest first.
pub async fn overdue_targets(
    conn: &mut AnyConnection,
    before: i64,
    limit: i64,
    breaches: bool,
) -> Result<Vec<TargetKey>, Error> {
    let (column, unfired) = if breaches { ("due_at", "") } else { ("warn_at", " AND warned_at IS NULL") };
    let sql = format!(
        "SELECT record_id, metric, cycle FROM sla_targets WHERE open = {OPEN} AND breached_at IS NULL{unfired} \
         AND fulfilled_at IS NULL AND running_since IS NOT NULL AND {column} IS NOT NULL AND {column} <= $1 \
         ORDER BY {column} LIMIT {limit}"
    );
    let rows = sqlx::query(&sql).bind(before).fetch_all(conn).await?;
    rows.iter()
        .map(|r| {
            let metric: String = r.try_get("metric")?;
            let metric =
                Metric::parse(&metric).ok_or_else(|| Error::Internal(anyhow::anyhow!("unknown metric {metric:?}")))?;
            Ok(TargetKey { record_id: r.try_get("record_id")?, metric, cycle: r.try_get("cycle")? })
        })
        .collect()
}

pub async fn escalations_due(conn: &mut AnyConnection, now: i64, limit: i64) -> Result<Vec<TargetRow>, Error> {
    let sql = format!(
        "SELECT {TARGET_COLUMNS} FROM sla_targets WHERE escalation_due_at IS NOT NULL AND escalation_due_at <= $1 \
         AND escalated_at IS NULL AND fulfilled_at IS NULL ORDER BY escalation_due_at LIMIT {limit}"
    );
    let rows = sqlx::query(&sql).bind(now).fetch_all(conn).await?;
    rows.iter().map(target_from_row).collect()
}

/// Stores an event once; false when its id was already recorded.
pub async fn insert_event(conn: &mut AnyConnection, e: &SlaEvent) -> Result<bool, Error> {
    let done = sqlx::query(
        "INSERT INTO sla_events (id, record_id, metric, cycle, kind, at, due_at, queue, assignee) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&e.id)
    .bind(&e.key.record_id)
    .bind(e.key.metric.as_str())
    .bind(e.key.cycle)
    .bind(e.kind.as_str())
    .bind(e.at_ms)
    .bind(e.due_at_ms)
    .bind(&e.queue)
    .bind(&e.assignee)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Events recorded after `since_id` (by time, then id), for watchers that
/// reconnect; with `routed_to`, only the events of that person (the limit
/// counts theirs). An unknown id replays nothing.
pub async fn events_after(
    conn: &mut AnyConnection,
    since_id: &str,
    limit: i64,
    routed_to: Option<&str>,
) -> Result<Vec<SlaEvent>, Error> {
    let sql = format!(
        "SELECT e.id, e.record_id, e.metric, e.cycle, e.kind, e.at, e.due_at, e.queue, e.assignee FROM sla_events e, \
         (SELECT at, id FROM sla_events WHERE id = $1) s WHERE (e.at > s.at OR (e.at = s.at AND e.id > s.id)) \
         AND ($2 = '' OR e.assignee = $2) ORDER BY e.at, e.id LIMIT {limit}"
    );
    let rows = sqlx::query(&sql).bind(since_id).bind(routed_to.unwrap_or("")).fetch_all(conn).await?;
    let mut out = Vec::new();
    for r in rows {
        let metric: String = r.try_get(2)?;
        let kind: String = r.try_get(4)?;
        let (Some(metric), Some(kind)) = (Metric::parse(&metric), crate::EventKind::parse(&kind)) else { continue };
        out.push(SlaEvent {
            id: r.try_get(0)?,
            key: TargetKey { record_id: r.try_get(1)?, metric, cycle: r.try_get(3)? },
            kind,
            at_ms: r.try_get(5)?,
            due_at_ms: r.try_get(6)?,
            queue: r.try_get(7)?,
            assignee: r.try_get(8)?,
        });
    }
    Ok(out)
}

/// Fires a claimed warning or breach on `row` (read in the same
/// transaction) once: the event when this call recorded it, `None` when it
/// was already recorded or no longer applies. A breach schedules the
/// second-level escalation at `second_level(due)`.
pub async fn fire_due(
    conn: &mut AnyConnection,
    row: &mut TargetRow,
    kind: DueKind,
    now: i64,
    second_level: impl FnOnce(i64) -> Option<i64>,
) -> Result<Option<SlaEvent>, Error> {
    let key = row.target.key.clone();
    Ok(match kind {
        DueKind::Warning => match row.target.clone().mark_warned(now) {
            Some(ev) if claim_warning(conn, &key, now).await? => {
                row.target.mark_warned(now);
                Some(ev)
            }
            _ => None,
        },
        DueKind::Breach => match (row.target.clone().mark_breached(now), row.target.due_at) {
            (Some(ev), Some(due)) => {
                let second = second_level(due);
                if claim_breach(conn, &key, due, second).await? {
                    row.target.mark_breached(now);
                    row.escalation_due_at = second;
                    Some(ev)
                } else {
                    None
                }
            }
            _ => None,
        },
    })
}

/// The safety net's query for a sweeper: warnings first (a target overdue
/// for both warns, then breaches), each in its shard of `shards`.
pub async fn overdue_claims(
    conn: &mut AnyConnection,
    before: i64,
    limit: usize,
    shards: u32,
) -> Result<Vec<Claimed>, Error> {
    let limit = i64::try_from(limit).unwrap_or(500);
    let mut out = Vec::new();
    for (breaches, kind) in [(false, DueKind::Warning), (true, DueKind::Breach)] {
        for key in overdue_targets(conn, before, limit, breaches).await? {
            let shard = crate::live::shard_of(&key.record_id, shards);
            out.push(Claimed { shard, key, kind });
        }
    }
    Ok(out)
}
