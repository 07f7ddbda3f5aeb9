//! Agent statistics. Performance bonuses are paid from these figures, so
//! every one is counted on the service clock over whole days in the firm's
//! time zone.
use kefu_kit::{Error, error::Violations, parse};
use kefu_proto::tickets::v1 as pb;

use super::TicketsApi;
use crate::{domain, store};

/// Ratings of 4 and 5 count as satisfied.
const SATISFIED: i64 = 4;

fn ratio(a: i64, b: i64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

pub(super) async fn agent_stats(api: &TicketsApi, r: pb::GetAgentStatsRequest) -> Result<pb::AgentStats, Error> {
    let mut v = Violations::new();
    let agent = v.check(parse::required_line("agent", &r.agent, 64));
    let from = v.check(parse::date("from_date", &r.from_date));
    let to = v.check(parse::date("to_date", &r.to_date));
    if let (Some(f), Some(t)) = (from, to)
        && t < f
    {
        v.add("to_date", "is before from_date");
    }
    v.finish()?;
    let (Some(agent), Some(from), Some(to)) = (agent, from, to) else {
        return Err(Error::invalid("agent", "is not valid"));
    };
    // [start of from_date, start of the day after to_date)
    // in the calendar's zone (the firm's).
    let zone = api.engine.calendar().time_zone();
    let (a, b) = (domain::day_start_ms(from, zone), domain::day_start_ms(to.succ_opt().unwrap_or(to), zone));
    let mut conn = api.pool.acquire().await?;
    let f = store::agent_figures(&mut conn, &agent, a, b).await?;
    let rated = f.ratings.len() as i64;
    let offered = f.calls_answered + f.calls_abandoned;
    Ok(pb::AgentStats {
        agent,
        tickets_handled: f.handled,
        tickets_solved: f.solved,
        resolution_rate: ratio(f.solved, f.handled),
        reopen_rate: ratio(f.reopened, f.solved.max(f.reopened)),
        targets: f
            .targets
            .into_iter()
            .map(|(metric, (met, missed))| pb::MetricShare { metric, met, missed, share_met: ratio(met, met + missed) })
            .collect(),
        average_satisfaction: ratio(f.ratings.iter().sum(), rated),
        csat: ratio(f.ratings.iter().filter(|r| **r >= SATISFIED).count() as i64, rated) * 100.0,
        ratings: rated,
        calls_answered: f.calls_answered,
        average_answer_seconds: ratio(f.answer_wait_ms, f.calls_answered) / 1000.0,
        calls_offered: offered,
        calls_abandoned: f.calls_abandoned,
        abandonment_rate: ratio(f.calls_abandoned, offered),
        first_contact_resolution_rate: ratio(f.first_contact_solved, f.solved),
        calls_answered_in_service_level: f.answered_in_service_level,
        answer_service_level: ratio(f.answered_in_service_level, offered),
    })
}
