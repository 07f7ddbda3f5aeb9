//! After a configuration change: the open targets computed under an older
//! configuration are recomputed, page by page, each in a transaction of its
//! own and written only if nobody changed them since they were read.
use std::sync::Arc;

use kefu_kit::Error;
use kefu_sla::{LiveEntry, Metric, TargetKey};
use sqlx::AnyConnection;

use super::{Config, SlaEngine, cal_err, entry_of, is_call};
use crate::store;

/// Targets recomputed per page of a pass.
const RECOMPUTE_PAGE: i64 = 200;

impl SlaEngine {
    /// Recomputes, page by page, the open targets computed under an older
    /// configuration than this replica's (after a calendar, policy or filing
    /// deadline change): new due and warning instants in the database and
    /// the live view. No event is emitted here; one already recorded stays,
    /// and a due time moved into the past is breached by the sweeper, once.
    pub async fn recompute_stale(&self) -> Result<usize, Error> {
        // One pass at a time in this process; a follower tick during a
        // long pass does not wait for it.
        let Ok(_one) = self.recomputing.try_lock() else { return Ok(0) };
        let cfg = self.config();
        let mut after = (String::new(), String::new(), 0_i64);
        let mut total = 0;
        loop {
            let keys = {
                let mut conn = self.pool.acquire().await?;
                store::stale_targets(&mut conn, cfg.version, &after, RECOMPUTE_PAGE).await?
            };
            let Some(last) = keys.last() else { break };
            after = (last.record_id.clone(), last.metric.as_str().to_owned(), last.cycle);
            let mut entries = Vec::new();
            // Each target in a transaction of its own: one that cannot be
            // recomputed does not hold back the others.
            for key in &keys {
                let mut tx = self.pool.begin().await?;
                match self.recompute_one(&mut tx, &cfg, key).await {
                    Ok(entry) => {
                        tx.commit().await?;
                        if let Some(e) = entry {
                            entries.push(e);
                            total += 1;
                        }
                    }
                    Err(e) => {
                        drop(tx);
                        tracing::warn!(
                            record = %key.record_id,
                            metric = key.metric.as_str(),
                            error = %e,
                            "an SLA target could not be recomputed under the changed configuration; it keeps its due time"
                        );
                        // Not retried each pass unless a concurrent change caused it.
                        if !matches!(e, Error::Aborted(_)) {
                            let mut conn = self.pool.acquire().await?;
                            store::mark_config_version(&mut conn, key, cfg.version).await?;
                        }
                    }
                }
            }
            self.metrics.recomputed.add(entries.len() as u64, &[]);
            self.writer.send(entries, Vec::new(), None).await;
            if keys.len() < RECOMPUTE_PAGE as usize {
                break;
            }
        }
        if total > 0 {
            tracing::info!(targets = total, "running SLA targets recomputed under the changed configuration");
        }
        Ok(total)
    }

    async fn recompute_one(
        &self,
        conn: &mut AnyConnection,
        cfg: &Config,
        key: &TargetKey,
    ) -> Result<Option<LiveEntry>, Error> {
        let Some(before) = store::get_target(conn, key).await? else { return Ok(None) };
        if !before.open || before.config_version >= cfg.version {
            return Ok(None);
        }
        let mut row = before.clone();
        row.config_version = cfg.version;
        if row.target.breached_at.is_some() {
            // A breach is history: its due time stays what it was.
            store::recompute_target(conn, &row, &before).await?;
            return Ok(None);
        }
        let now = self.now();
        // Time already used is measured in the calendar it ran in.
        let ran_in = self.config_at(before.config_version).unwrap_or_else(|| Arc::new(cfg.clone()));
        let old_cal = ran_in.calendar(&before.calendar_id);
        let mut ticket = None;
        let (policy, queue, assignee) = if is_call(&key.record_id) {
            let call_id = key.record_id.trim_start_matches("call:");
            let queue = store::get_call(conn, call_id).await?.map(|c| c.queue).unwrap_or_default();
            (cfg.policy(&row.policy_id).cloned(), queue, String::new())
        } else {
            let Some(t) = store::get_ticket(conn, &key.record_id).await? else { return Ok(None) };
            let (q, a) = (t.queue.clone(), t.assignee.clone());
            let p = self.policy_for(cfg, &t);
            ticket = Some(t);
            (p, q, a)
        };
        let calendar_id = policy.as_ref().map_or_else(|| cfg.default_calendar.clone(), |p| cfg.calendar_id_of(p));
        let cal = cfg.calendar(&calendar_id);
        let mut deadline = None;
        if let Some(t) = &ticket
            && key.metric == Metric::Resolution
            && !t.filing_period.is_empty()
        {
            // A cap that cannot be computed keeps the one there (and says why).
            match cfg.filing_cap(&calendar_id, &t.filing_period) {
                Ok(cap) => {
                    row.target.cap_at = cap.as_ref().map(|c| c.cap_ms);
                    row.cap_provisional = cap.as_ref().is_some_and(|c| c.provisional);
                    deadline = cap.map(|c| c.deadline);
                }
                Err(e) => {
                    tracing::warn!(record = %key.record_id, error = %e, "filing deadline not recomputed; the cap stays");
                }
            }
        }
        row.target.settle(now, &old_cal).map_err(cal_err)?;
        match policy.as_ref().and_then(|p| p.rule(key.metric)) {
            Some(rule) => {
                row.target.rematch(rule, now, &cal).map_err(cal_err)?;
                if let Some(p) = &policy {
                    row.policy_id.clone_from(&p.id);
                }
            }
            None => row.target.recompute(&cal).map_err(cal_err)?,
        }
        row.calendar_id = calendar_id;
        // Written only if nobody changed the target since it was read; a
        // writer that did stamps its own version, and the next pass looks again.
        if !store::recompute_target(conn, &row, &before).await? {
            return Ok(None);
        }
        if let (Some(mut t), Some(deadline)) = (ticket, deadline)
            && deadline != t.filing_deadline
        {
            let body = format!("filing deadline now {deadline} (was {})", t.filing_deadline);
            store::add_timeline(conn, &t.id, "notification", "sla", &body, now).await?;
            t.filing_deadline = deadline;
            store::save_ticket(conn, &mut t).await?;
        }
        Ok(Some(entry_of(&row.target, &queue, &assignee)))
    }
}
