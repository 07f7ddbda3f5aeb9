//! The SLA configuration every target is computed under — calendars,
//! policies, escalation rules — read as one piece, and seeded on first start.
use std::{collections::BTreeMap, sync::Arc};

use kefu_kit::Error;
pub use kefu_sla::policy::{EscalationRules, NOTIFY_ROLES};
use kefu_sla::{Calendar, Metric, Policy, policy};
use sqlx::AnyConnection;

use super::filing_cap_in;
use crate::store;

#[derive(Debug, Clone, Default)]
pub struct SlaSettings {
    /// Escalation rules stored on first start.
    pub escalation: EscalationRules,
    /// Signs the audit trail of configuration changes; `None`: a key of
    /// this process only (tests and benchmarks).
    pub audit_keys: Option<kefu_kit::audit::AuditKeys>,
}

/// The configuration every target is computed under, loaded as one piece
/// and replaced as one piece when any of it changes.
#[derive(Debug, Clone)]
pub struct Config {
    /// Version of what due times are computed from (calendars, policies).
    pub version: i64,
    /// Version of the escalation rules.
    pub rules_version: i64,
    pub calendars: BTreeMap<String, Arc<Calendar>>,
    pub default_calendar: String,
    pub policies: Vec<Policy>,
    pub escalation: EscalationRules,
}

impl Config {
    /// A calendar by id; empty or unknown: the default one.
    pub fn calendar(&self, id: &str) -> Arc<Calendar> {
        self.calendars
            .get(id)
            .or_else(|| self.calendars.get(&self.default_calendar))
            .or_else(|| self.calendars.values().next())
            .cloned()
            .unwrap_or_else(|| Arc::new(Calendar::always_open()))
    }

    /// The id of the calendar a policy counts in.
    pub fn calendar_id_of(&self, p: &Policy) -> String {
        if !p.calendar_id.is_empty() && self.calendars.contains_key(&p.calendar_id) {
            p.calendar_id.clone()
        } else {
            self.default_calendar.clone()
        }
    }

    pub fn policy(&self, id: &str) -> Option<&Policy> {
        self.policies.iter().find(|p| p.id == id)
    }

    /// The cap a filing period puts on a request's resolution counted in
    /// calendar `calendar_id`: the deadline from that calendar's table, else
    /// the default calendar's (the firm's official 征期 table), else a
    /// provisional one by the default calendar's statutory rest days; the
    /// close of business of that day (or of the last working day before it)
    /// in `calendar_id`, moved back by its filing lead.
    pub fn filing_cap(&self, calendar_id: &str, period: &str) -> Result<Option<FilingCap>, Error> {
        filing_cap_in(&self.calendar(calendar_id), &self.calendar(""), period)
    }
}

/// The due-time cap of a tax-filing request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilingCap {
    pub cap_ms: i64,
    /// YYYY-MM-DD of the filing deadline.
    pub deadline: String,
    /// The deadline is computed, the official one not loaded.
    pub provisional: bool,
}

/// Default Chinese labels of the categories a firm starts with.
pub const DEFAULT_CATEGORY_LABELS: &[(&str, &str)] = &[
    ("tax_filing", "纳税申报"),
    ("bookkeeping", "代理记账"),
    ("tax_policy", "税务政策咨询"),
    ("tax_registration", "税务登记"),
    ("invoice_application", "发票申领"),
    ("other", "其他"),
];

/// Reads the whole configuration in one connection.
pub(super) async fn read_config(conn: &mut AnyConnection) -> Result<Config, Error> {
    let (version, rules_version) = config_versions(conn).await?;
    let mut calendars = BTreeMap::new();
    let mut default_calendar = String::new();
    for row in store::calendars(conn).await? {
        let cal = Calendar::from_json(&row.body).map_err(|e| anyhow::anyhow!("stored calendar {}: {e}", row.id))?;
        if row.is_default == 1 && default_calendar.is_empty() {
            default_calendar.clone_from(&row.id);
        }
        calendars.insert(row.id, Arc::new(cal));
    }
    if default_calendar.is_empty()
        && let Some(first) = calendars.keys().next()
    {
        default_calendar.clone_from(first);
    }
    let policies: Vec<Policy> = store::policies(conn)
        .await?
        .iter()
        .map(|b| serde_json::from_str(b))
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("stored policy: {e}"))?;
    let escalation = match store::get_setting(conn, "escalation").await? {
        Some(json) => serde_json::from_str(&json).map_err(|e| anyhow::anyhow!("stored escalation rules: {e}"))?,
        None => EscalationRules::default(),
    };
    Ok(Config { version, rules_version, calendars, default_calendar, policies, escalation })
}

/// The versions of the configuration and of the escalation rules.
pub(super) async fn config_versions(conn: &mut AnyConnection) -> Result<(i64, i64), Error> {
    Ok((store::config_version(conn).await?, store::counter(conn, "escalation").await?))
}

/// First start (or first start after an upgrade): stores the defaults, and
/// moves configuration kept in the older settings rows into its tables.
pub(super) async fn seed(
    conn: &mut AnyConnection,
    settings: &SlaSettings,
    keys: &kefu_kit::audit::AuditKeys,
) -> anyhow::Result<()> {
    if store::get_setting(conn, "escalation").await?.is_none() {
        store::put_setting(conn, "escalation", &serde_json::to_string(&settings.escalation)?).await?;
    }
    if store::calendars(conn).await?.is_empty() {
        let cal = match store::get_setting(conn, "calendar").await? {
            Some(json) => Calendar::from_json(&json).map_err(|e| anyhow::anyhow!("stored calendar: {e}"))?,
            None => Calendar::china_default()?,
        };
        let row = store::CalendarRow {
            id: cal.id.clone(),
            body: serde_json::to_string(cal.spec())?,
            is_default: 1,
            version: 1,
            updated_at: store::now_wall_ms(),
            updated_by: "kefu".into(),
        };
        store::insert_calendar(conn, &row).await?;
    }
    if store::categories(conn, true).await?.is_empty() {
        let codes: Vec<String> = match store::get_setting(conn, "categories").await? {
            Some(json) => serde_json::from_str(&json)?,
            None => DEFAULT_CATEGORY_LABELS.iter().map(|(c, _)| (*c).to_owned()).collect(),
        };
        let list: Vec<(String, String)> = codes
            .into_iter()
            .map(|code| {
                let label = DEFAULT_CATEGORY_LABELS
                    .iter()
                    .find(|(c, _)| *c == code)
                    .map_or_else(|| code.clone(), |(_, l)| (*l).to_owned());
                (code, label)
            })
            .collect();
        store::replace_categories(conn, &list).await?;
    }
    let mut bodies = store::policies(conn).await?;
    if bodies.is_empty() {
        for p in policy::default_policies(&Calendar::china_default()?) {
            store::put_policy(conn, &p.id, i64::from(p.position), &serde_json::to_string(&p)?).await?;
        }
        bodies = store::policies(conn).await?;
    }
    // The phone policy of earlier releases counted 15 seconds; §3 counts
    // three rings (of five seconds: the same 15 seconds, and a fourth ring
    // now misses it). The upgrade is recorded in the audit trail.
    for body in bodies {
        let mut p: Policy = serde_json::from_str(&body)?;
        if p.id == "default-phone"
            && let Some(r) = p.metrics.iter_mut().find(|r| r.metric == Metric::Answer && r.rings.is_none())
            && r.duration_secs == 15
        {
            *r = kefu_sla::MetricRule::in_rings(Metric::Answer, 3, policy::DEFAULT_SECONDS_PER_RING);
            let body = serde_json::to_string(&p)?;
            store::put_policy(conn, &p.id, i64::from(p.position), &body).await?;
            let ev = kefu_kit::audit::Event {
                actor: "kefu",
                actor_role: "service",
                action: "sla.policy.upgrade",
                subject: &p.id,
                detail: format!("answer target counted in rings: {body}"),
                purpose: "policy §3: answer within three rings",
            };
            kefu_kit::audit::append(conn, keys, ev).await?;
            store::bump_config_version(conn).await?;
        }
    }
    Ok(())
}
