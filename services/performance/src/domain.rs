//! The rules of §5, with no I/O: schemes whose weights sum to 100, scoring
//! curves, periods of the firm's calendar, grades and the forced
//! distribution, bonuses in fen, honours, and the evaluation's workflow.
use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use kefu_kit::{Error, error::Violations};
use kefu_proto::performance::v1::{EvaluationState as S, IndicatorGroup, PeriodKind, Source};
use serde::{Deserialize, Serialize};

/// A code: 1–40 of a–z, 0–9 and `_`.
pub fn code(field: &str, raw: &str) -> Result<String, Error> {
    let s = raw.trim();
    let ok = (1..=40).contains(&s.len()) && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        return Err(Error::invalid(field, "is not a code (1–40 of a–z, 0–9 and _)"));
    }
    Ok(s.to_owned())
}

/// The groups in the order people read them.
pub const GROUPS: [IndicatorGroup; 3] =
    [IndicatorGroup::ServiceQuality, IndicatorGroup::Capability, IndicatorGroup::Attitude];

pub fn group_label(g: IndicatorGroup) -> &'static str {
    match g {
        IndicatorGroup::ServiceQuality => "服务质量",
        IndicatorGroup::Capability => "工作能力",
        IndicatorGroup::Attitude => "服务态度",
        IndicatorGroup::Unspecified => "未分组",
    }
}

/// Which service a source's figure comes from (`None`: entered by a person).
pub fn service_of(s: Source) -> Option<&'static str> {
    use Source as X;
    match s {
        X::TicketsSlaMet
        | X::TicketsResolutionRate
        | X::TicketsReopenRate
        | X::TicketsCsat
        | X::TicketsFirstContactResolution
        | X::TicketsAnswerServiceLevel => Some("tickets"),
        X::ComplaintsReceived | X::ComplaintsUpheld | X::ComplaintsAttitude => Some("complaints"),
        X::TrainingHours | X::TrainingExamAverage | X::TrainingCertificates => Some("training"),
        X::ManualSupervisorRating | X::ManualPeerReview | X::Unspecified => None,
    }
}

pub fn is_manual(s: Source) -> bool {
    matches!(s, Source::ManualSupervisorRating | Source::ManualPeerReview)
}

/// The unit a source's figure is read in, for explanations.
fn unit(s: Source) -> &'static str {
    use Source as X;
    match s {
        X::ComplaintsReceived | X::ComplaintsUpheld | X::ComplaintsAttitude => " 件",
        X::TrainingHours => " 小时",
        X::TrainingCertificates => " 个",
        X::ManualSupervisorRating | X::ManualPeerReview => " 分",
        _ => "%",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    pub at_least: f64,
    pub score: f64,
}

/// A scoring curve that holds only valid parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "curve", rename_all = "snake_case")]
pub enum Scoring {
    /// 0 at `floor`, 100 at `target` (floor < target).
    Linear { floor: f64, target: f64 },
    /// 100 at `target`, 0 at `floor` (target < floor).
    Inverse { floor: f64, target: f64 },
    /// Ascending by `at_least`.
    Thresholds { steps: Vec<Threshold> },
    /// The score entered.
    Direct,
}

impl Scoring {
    /// The score of a figure, 0–100.
    pub fn score(&self, value: f64) -> f64 {
        let s = match self {
            Scoring::Linear { floor, target } => (value - floor) / (target - floor) * 100.0,
            Scoring::Inverse { floor, target } => (floor - value) / (floor - target) * 100.0,
            Scoring::Thresholds { steps } => steps.iter().rev().find(|t| value >= t.at_least).map_or(0.0, |t| t.score),
            Scoring::Direct => value,
        };
        round2(s.clamp(0.0, 100.0))
    }

    /// How the curve scores, in Chinese.
    pub fn describe(&self, u: &str) -> String {
        match self {
            Scoring::Linear { floor, target } => format!("达到 {target}{u} 得满分，{floor}{u} 及以下 0 分，之间按比例"),
            Scoring::Inverse { floor, target } => {
                format!("越低越好：{target}{u} 及以下得满分，{floor}{u} 及以上 0 分，之间按比例")
            }
            Scoring::Thresholds { steps } => {
                let parts: Vec<String> =
                    steps.iter().map(|t| format!("≥{}{u} 得 {} 分", t.at_least, t.score)).collect();
                format!("分段计分：{}", parts.join("，"))
            }
            Scoring::Direct => "由评价人直接打分（0–100）".to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Indicator {
    pub code: String,
    pub name: String,
    pub group: i32,
    pub source: i32,
    pub scoring: Scoring,
    pub weight: i32,
}

impl Indicator {
    pub fn group(&self) -> IndicatorGroup {
        IndicatorGroup::try_from(self.group).unwrap_or(IndicatorGroup::Unspecified)
    }

    pub fn source(&self) -> Source {
        Source::try_from(self.source).unwrap_or(Source::Unspecified)
    }
}

/// A scheme's groups and indicators, checked: every weight 1–100, the
/// groups' weights summing to 100 and each group's indicators' too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemeBody {
    /// Group (enum number) → weight.
    pub groups: BTreeMap<i32, i32>,
    pub indicators: Vec<Indicator>,
}

/// Checks the weights of a scheme (every violation named).
pub fn check_weights(v: &mut Violations, body: &SchemeBody) {
    let total: i32 = body.groups.values().sum();
    if total != 100 {
        v.add("scheme.groups", format!("the groups' weights sum to {total}%, not 100%"));
    }
    for (g, gw) in &body.groups {
        let group = IndicatorGroup::try_from(*g).unwrap_or(IndicatorGroup::Unspecified);
        let inner: i32 = body.indicators.iter().filter(|i| i.group == *g).map(|i| i.weight).sum();
        if *gw > 0 && inner != 100 {
            v.add(
                "scheme.indicators",
                format!(
                    "the indicators of {}（{}）weigh {inner}% together, not 100%",
                    group_label(group),
                    group.as_str_name()
                ),
            );
        }
    }
    for (i, ind) in body.indicators.iter().enumerate() {
        if !body.groups.contains_key(&ind.group) {
            v.add(
                format!("scheme.indicators[{i}].group"),
                format!("{} has no weight in scheme.groups", group_label(ind.group())),
            );
        }
    }
}

/// A figure or score rounded to two decimals.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Each indicator's figure: source figures by source number, and the
/// reviewer's manual scores by indicator code.
pub struct Inputs<'a> {
    pub figures: &'a BTreeMap<i32, f64>,
    pub manual: &'a BTreeMap<String, f64>,
    pub self_scores: &'a BTreeMap<String, f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub code: String,
    pub value: f64,
    pub score: f64,
    pub self_score: f64,
    pub scored: bool,
    pub explanation: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Totals {
    pub indicators: Vec<Scored>,
    /// Group → (weight, score).
    pub groups: Vec<(IndicatorGroup, i32, f64)>,
    pub total: f64,
}

/// Scores every indicator and weighs them into group scores and a total
/// (0–100, two decimals).
pub fn score(body: &SchemeBody, x: &Inputs<'_>) -> Totals {
    let mut indicators = Vec::with_capacity(body.indicators.len());
    for ind in &body.indicators {
        let src = ind.source();
        let u = unit(src);
        let (value, scored) = if is_manual(src) {
            match x.manual.get(&ind.code) {
                Some(v) => (*v, true),
                None => (0.0, false),
            }
        } else {
            (x.figures.get(&ind.source).copied().unwrap_or(0.0), true)
        };
        let score = if scored { ind.scoring.score(value) } else { 0.0 };
        let explanation = if scored {
            format!("{}：{}{u}，{}，得 {score} 分", ind.name, round2(value), ind.scoring.describe(u))
        } else {
            format!("{}：尚未评分", ind.name)
        };
        indicators.push(Scored {
            code: ind.code.clone(),
            value: round2(value),
            score,
            self_score: x.self_scores.get(&ind.code).copied().unwrap_or(0.0),
            scored,
            explanation,
        });
    }
    let mut groups = Vec::new();
    let mut total = 0.0;
    for g in GROUPS {
        let Some(gw) = body.groups.get(&(g as i32)) else { continue };
        let gs: f64 = body
            .indicators
            .iter()
            .zip(&indicators)
            .filter(|(i, _)| i.group == g as i32)
            .map(|(i, s)| f64::from(i.weight) * s.score / 100.0)
            .sum();
        total += f64::from(*gw) * gs / 100.0;
        groups.push((g, *gw, round2(gs)));
    }
    Totals { indicators, groups, total: round2(total) }
}

/// A period of the firm's calendar: its label's first and last day.
pub fn period(field: &str, kind: PeriodKind, raw: &str) -> Result<(String, NaiveDate, NaiveDate), Error> {
    let s = raw.trim().to_ascii_uppercase();
    let bad = |what: &str| Error::invalid(field, format!("{raw:?} is not {what}"));
    let year = |y: &str| -> Option<i32> { y.parse::<i32>().ok().filter(|y| (2000..=2100).contains(y)) };
    let (from, to) = match kind {
        PeriodKind::Month => {
            let (y, m) = s.split_once('-').ok_or_else(|| bad("a month (YYYY-MM)"))?;
            let y = year(y).ok_or_else(|| bad("a month (YYYY-MM)"))?;
            let m: u32 = m.parse().ok().filter(|m| (1..=12).contains(m)).ok_or_else(|| bad("a month (YYYY-MM)"))?;
            let from = NaiveDate::from_ymd_opt(y, m, 1).ok_or_else(|| bad("a month"))?;
            (from, next_month(from) - chrono::Duration::days(1))
        }
        PeriodKind::Quarter => {
            let (y, q) = s.split_once("-Q").ok_or_else(|| bad("a quarter (YYYY-Qn)"))?;
            let y = year(y).ok_or_else(|| bad("a quarter (YYYY-Qn)"))?;
            let q: u32 = q.parse().ok().filter(|q| (1..=4).contains(q)).ok_or_else(|| bad("a quarter (YYYY-Qn)"))?;
            let from = NaiveDate::from_ymd_opt(y, 3 * q - 2, 1).ok_or_else(|| bad("a quarter"))?;
            let to = next_month(next_month(next_month(from))) - chrono::Duration::days(1);
            (from, to)
        }
        PeriodKind::Year => {
            let y = year(&s).ok_or_else(|| bad("a year (YYYY)"))?;
            (
                NaiveDate::from_ymd_opt(y, 1, 1).ok_or_else(|| bad("a year"))?,
                NaiveDate::from_ymd_opt(y, 12, 31).ok_or_else(|| bad("a year"))?,
            )
        }
        PeriodKind::Unspecified => return Err(Error::invalid("cycle.kind", "is required (MONTH, QUARTER or YEAR)")),
    };
    Ok((s, from, to))
}

fn next_month(d: NaiveDate) -> NaiveDate {
    let (y, m) = if d.month() == 12 { (d.year() + 1, 1) } else { (d.year(), d.month() + 1) };
    NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(d)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Band {
    pub grade: String,
    pub min_score: f64,
    /// Percent of the base.
    pub coefficient: i32,
    pub max_share: i32,
    pub min_share: i32,
}

/// Checks a cycle's bands: 1–8 of them, distinct grades of 1–4 letters
/// A–Z, minimum scores strictly falling to 0, coefficients 0–500 %,
/// shares 0–100 %.
pub fn check_bands(v: &mut Violations, bands: &[Band]) {
    if bands.is_empty() || bands.len() > 8 {
        v.add("cycle.grades", "give 1 to 8 grades, best first");
        return;
    }
    for (i, b) in bands.iter().enumerate() {
        let f = format!("cycle.grades[{i}]");
        if b.grade.is_empty() || b.grade.len() > 4 || !b.grade.chars().all(|c| c.is_ascii_uppercase()) {
            v.add(format!("{f}.grade"), "is 1–4 capital letters, e.g. A");
        }
        if bands[..i].iter().any(|o| o.grade == b.grade) {
            v.add(format!("{f}.grade"), format!("{} is listed twice", b.grade));
        }
        if !(0.0..=100.0).contains(&b.min_score) || b.min_score.is_nan() {
            v.add(format!("{f}.min_score"), "is outside the scale 0–100");
        }
        if i > 0 && b.min_score >= bands[i - 1].min_score {
            v.add(format!("{f}.min_score"), "must be below the better grade's (grades are listed best first)");
        }
        if !(0..=500).contains(&b.coefficient) {
            v.add(format!("{f}.coefficient"), "is a percent of the base from 0 to 500");
        }
        for (name, s) in [("max_share", b.max_share), ("min_share", b.min_share)] {
            if !(0..=100).contains(&s) {
                v.add(format!("{f}.{name}"), "is a percent from 0 to 100");
            }
        }
    }
    if bands.last().is_some_and(|b| b.min_score != 0.0) {
        v.add(format!("cycle.grades[{}].min_score", bands.len() - 1), "the lowest grade starts at 0");
    }
}

/// The grade a total earns.
pub fn grade_for(bands: &[Band], total: f64) -> String {
    bands.iter().find(|b| total >= b.min_score).or(bands.last()).map(|b| b.grade.clone()).unwrap_or_default()
}

pub fn band<'a>(bands: &'a [Band], grade: &str) -> Option<&'a Band> {
    bands.iter().find(|b| b.grade == grade)
}

/// `share` percent of `n`, rounded half up.
pub fn share_of(n: usize, share: i32) -> usize {
    let share = usize::try_from(share.max(0)).unwrap_or(0);
    (n * share * 2 + 100) / 200
}

/// What breaks the forced distribution, in Chinese, for grades as they
/// stand (empty: none). A band's max share caps those at it or better; its
/// min share asks for at least that many at it or worse.
pub fn distribution_violations(bands: &[Band], grades: &[String]) -> Vec<String> {
    let n = grades.len();
    let rank = |g: &str| bands.iter().position(|b| b.grade == g).unwrap_or(bands.len());
    let mut out = Vec::new();
    for (i, b) in bands.iter().enumerate() {
        if b.max_share > 0 {
            let at_or_better = grades.iter().filter(|g| rank(g) <= i).count();
            let cap = share_of(n, b.max_share);
            if at_or_better > cap {
                out.push(format!(
                    "{} 及以上 {at_or_better} 人，超过上限 {}%（{n} 人中最多 {cap} 人）",
                    b.grade, b.max_share
                ));
            }
        }
        if b.min_share > 0 {
            let at_or_worse = grades.iter().filter(|g| rank(g) >= i).count();
            let floor = share_of(n, b.min_share);
            if at_or_worse < floor {
                out.push(format!(
                    "{} 及以下 {at_or_worse} 人，低于下限 {}%（{n} 人中至少 {floor} 人）",
                    b.grade, b.min_share
                ));
            }
        }
    }
    out
}

/// The bonus: base × coefficient %, rounded half up to the fen.
pub fn bonus(base_fen: i64, coefficient: i32) -> i64 {
    let x = i128::from(base_fen) * i128::from(coefficient);
    let r = (x.abs() + 50) / 100;
    i64::try_from(if x < 0 { -r } else { r }).unwrap_or(i64::MAX)
}

pub const ROUNDING: &str = "奖金 = 奖金基数 × 绩效系数，四舍五入到分";

pub use kefu_kit::money::yuan;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HonourRule {
    pub name: String,
    pub top: i32,
    pub min_grade: String,
    pub min_score: f64,
}

/// One finalised result, for honours.
pub struct Standing<'a> {
    pub staff_id: &'a str,
    pub name: &'a str,
    pub total: f64,
    pub grade: &'a str,
    pub quality: f64,
}

/// Who earns each honour, with the reason: (rule index, staff id, reason).
pub fn honours(rules: &[HonourRule], bands: &[Band], people: &[Standing<'_>]) -> Vec<(usize, String, String)> {
    let rank = |g: &str| bands.iter().position(|b| b.grade == g).unwrap_or(bands.len());
    let mut order: Vec<&Standing<'_>> = people.iter().collect();
    order.sort_by(|a, b| {
        b.total.total_cmp(&a.total).then(b.quality.total_cmp(&a.quality)).then_with(|| a.staff_id.cmp(b.staff_id))
    });
    let mut out = Vec::new();
    for (ri, r) in rules.iter().enumerate() {
        let eligible = order
            .iter()
            .filter(|p| p.total >= r.min_score && (r.min_grade.is_empty() || rank(p.grade) <= rank(&r.min_grade)));
        for (place, p) in eligible.take(usize::try_from(r.top).unwrap_or(0)).enumerate() {
            let place_in_all = order.iter().position(|o| o.staff_id == p.staff_id).unwrap_or(0) + 1;
            out.push((
                ri,
                p.staff_id.to_owned(),
                format!(
                    "{}：本期总分 {:.2}（全周期第 {place_in_all} 名，获奖第 {} 位），等级 {}，服务质量 {:.2} 分；评选规则：等级不低于 {}、总分不低于 {}，取前 {} 名",
                    p.name,
                    p.total,
                    place + 1,
                    p.grade,
                    p.quality,
                    if r.min_grade.is_empty() { "不限" } else { &r.min_grade },
                    r.min_score,
                    r.top
                ),
            ));
        }
    }
    out
}

/// Whether `grade` is at least `min` on the cycle's bands (an empty
/// minimum is always met; a grade the bands do not know never is).
pub fn at_least(bands: &[Band], grade: &str, min: &str) -> bool {
    if min.is_empty() {
        return true;
    }
    let rank = |g: &str| bands.iter().position(|b| b.grade == g);
    match (rank(grade), rank(min)) {
        (Some(g), Some(m)) => g <= m,
        // A path's grade the cycle does not use: compare the letters.
        (Some(_), None) => grade <= min,
        _ => false,
    }
}

/// The workflow's steps: what each action needs the evaluation to be in.
pub fn allowed(action: &str, s: S) -> bool {
    match action {
        "self_assessment" => s == S::SelfAssessment,
        "review" => matches!(s, S::SelfAssessment | S::Review),
        "calibrate" => s == S::Calibration,
        "acknowledge" | "appeal" => s == S::Acknowledgement,
        "decide_appeal" => s == S::Appealed,
        _ => false,
    }
}

/// The refusal of an action out of order, naming the step the evaluation
/// is at.
pub fn out_of_order(action: &str, s: S) -> Error {
    let at = match s {
        S::Pending => "the cycle is still open (the period has not been closed)",
        S::SelfAssessment => "it waits for the employee's self-assessment",
        S::Review => "it waits for the reviewer",
        S::Calibration => "it waits for HR calibration",
        S::Acknowledgement => "it waits for the employee to acknowledge or appeal",
        S::Appealed => "an appeal waits for HR's decision",
        S::Final => "it is final",
        S::Unspecified => "its state is unknown",
    };
    Error::FailedPrecondition(format!("{action} is not a step of this evaluation now: {at}"))
}

/// Business day `n` after `start` (0: the same day, or the next working
/// day if `start` is not one).
pub fn nth_working_day(cal: &kefu_sla::Calendar, start: NaiveDate, n: i32) -> NaiveDate {
    let mut d = start;
    while !cal.is_working_day(d) {
        d = d.succ_opt().unwrap_or(d);
    }
    let mut left = n.max(0);
    let mut guard = 0;
    while left > 0 && guard < 3660 {
        d = d.succ_opt().unwrap_or(d);
        if cal.is_working_day(d) {
            left -= 1;
        }
        guard += 1;
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bands() -> Vec<Band> {
        vec![
            Band { grade: "A".into(), min_score: 90.0, coefficient: 150, max_share: 20, min_share: 0 },
            Band { grade: "B".into(), min_score: 75.0, coefficient: 100, max_share: 0, min_share: 0 },
            Band { grade: "C".into(), min_score: 0.0, coefficient: 50, max_share: 0, min_share: 20 },
        ]
    }

    #[test]
    fn curves_score_linear_inverse_thresholds_and_direct() {
        let lin = Scoring::Linear { floor: 60.0, target: 95.0 };
        assert_eq!(lin.score(95.0), 100.0);
        assert_eq!(lin.score(60.0), 0.0);
        assert_eq!(lin.score(77.5), 50.0);
        assert_eq!(lin.score(120.0), 100.0, "capped at 100");
        let inv = Scoring::Inverse { floor: 5.0, target: 0.0 };
        assert_eq!(inv.score(0.0), 100.0);
        assert_eq!(inv.score(1.0), 80.0);
        assert_eq!(inv.score(9.0), 0.0);
        let th = Scoring::Thresholds {
            steps: vec![Threshold { at_least: 8.0, score: 60.0 }, Threshold { at_least: 16.0, score: 100.0 }],
        };
        assert_eq!(th.score(7.9), 0.0);
        assert_eq!(th.score(8.0), 60.0);
        assert_eq!(th.score(20.0), 100.0);
        assert_eq!(Scoring::Direct.score(87.5), 87.5);
    }

    #[test]
    fn periods_are_whole_months_quarters_and_years() {
        let (l, f, t) = period("p", PeriodKind::Quarter, "2026-q4").unwrap();
        assert_eq!((l.as_str(), f.to_string(), t.to_string()), ("2026-Q4", "2026-10-01".into(), "2026-12-31".into()));
        let (_, f, t) = period("p", PeriodKind::Month, "2028-02").unwrap();
        assert_eq!((f.to_string(), t.to_string()), ("2028-02-01".into(), "2028-02-29".into()));
        assert!(period("p", PeriodKind::Quarter, "2026-Q5").is_err());
        assert!(period("p", PeriodKind::Month, "2026-13").is_err());
        assert!(period("p", PeriodKind::Year, "26").is_err());
    }

    #[test]
    fn shares_round_half_up_and_the_distribution_names_each_breach() {
        assert_eq!(share_of(4, 20), 1, "0.8 → 1");
        assert_eq!(share_of(4, 10), 0, "0.4 → 0");
        assert_eq!(share_of(10, 25), 3, "2.5 → 3");
        let b = bands();
        let g = |x: &[&str]| x.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let v = distribution_violations(&b, &g(&["A", "A", "B", "B"]));
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v[0].contains("A 及以上 2 人") && v[0].contains("最多 1 人"), "{v:?}");
        assert!(v[1].contains("C 及以下 0 人") && v[1].contains("至少 1 人"), "{v:?}");
        assert!(distribution_violations(&b, &g(&["A", "B", "B", "C"])).is_empty());
    }

    #[test]
    fn bonuses_round_half_up_to_the_fen() {
        assert_eq!(bonus(800_000, 150), 1_200_000);
        assert_eq!(bonus(333_333, 115), 383_333, "383,332.95 fen → 383,333");
        assert_eq!(bonus(1, 50), 1, "0.5 fen rounds up");
        assert_eq!(bonus(1, 49), 0);
        assert_eq!(yuan(1_234_567), "¥12,345.67");
    }

    #[test]
    fn weights_must_sum_to_100_in_each_group_and_across_groups() {
        let ind = |code: &str, group: IndicatorGroup, weight| Indicator {
            code: code.into(),
            name: code.into(),
            group: group as i32,
            source: Source::TicketsCsat as i32,
            scoring: Scoring::Direct,
            weight,
        };
        let body = SchemeBody {
            groups: [(IndicatorGroup::ServiceQuality as i32, 60), (IndicatorGroup::Attitude as i32, 30)].into(),
            indicators: vec![
                ind("a", IndicatorGroup::ServiceQuality, 70),
                ind("b", IndicatorGroup::ServiceQuality, 20),
                ind("c", IndicatorGroup::Attitude, 100),
                ind("d", IndicatorGroup::Capability, 100),
            ],
        };
        let mut v = Violations::new();
        check_weights(&mut v, &body);
        let e = format!("{:?}", v.finish().unwrap_err());
        assert!(e.contains("sum to 90%"), "{e}");
        assert!(e.contains("服务质量") && e.contains("weigh 90%"), "{e}");
        assert!(e.contains("工作能力 has no weight"), "{e}");
    }

    #[test]
    fn totals_weigh_indicator_scores_by_group() {
        let body = SchemeBody {
            groups: [(IndicatorGroup::ServiceQuality as i32, 50), (IndicatorGroup::Attitude as i32, 50)].into(),
            indicators: vec![
                Indicator {
                    code: "csat".into(),
                    name: "客户满意度".into(),
                    group: IndicatorGroup::ServiceQuality as i32,
                    source: Source::TicketsCsat as i32,
                    scoring: Scoring::Linear { floor: 50.0, target: 100.0 },
                    weight: 100,
                },
                Indicator {
                    code: "rating".into(),
                    name: "主管评分".into(),
                    group: IndicatorGroup::Attitude as i32,
                    source: Source::ManualSupervisorRating as i32,
                    scoring: Scoring::Direct,
                    weight: 100,
                },
            ],
        };
        let figures = [(Source::TicketsCsat as i32, 75.0)].into();
        let manual = [("rating".to_owned(), 90.0)].into();
        let t = score(&body, &Inputs { figures: &figures, manual: &manual, self_scores: &BTreeMap::new() });
        assert_eq!(t.indicators[0].score, 50.0);
        assert_eq!(t.total, 70.0, "50 × 50% + 90 × 50%");
        assert_eq!(grade_for(&bands(), 70.0), "C");
        assert_eq!(grade_for(&bands(), 90.0), "A");
    }

    #[test]
    fn honours_go_to_the_best_totals_that_meet_the_rule() {
        let b = bands();
        let people = [
            Standing { staff_id: "a", name: "甲", total: 91.0, grade: "A", quality: 90.0 },
            Standing { staff_id: "b", name: "乙", total: 93.0, grade: "B", quality: 95.0 },
            Standing { staff_id: "c", name: "丙", total: 80.0, grade: "B", quality: 70.0 },
        ];
        let rule = HonourRule { name: "月度服务之星".into(), top: 1, min_grade: "A".into(), min_score: 85.0 };
        let h = honours(&[rule], &b, &people);
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].1, "a", "乙 scores higher but is graded B");
        assert!(h[0].2.contains("全周期第 2 名") && h[0].2.contains("等级 A"), "{}", h[0].2);
    }

    #[test]
    fn steps_are_refused_out_of_order() {
        assert!(allowed("self_assessment", S::SelfAssessment));
        assert!(!allowed("calibrate", S::Review));
        assert!(!allowed("appeal", S::Final));
        assert!(allowed("review", S::SelfAssessment), "a reviewer may go on once self-assessment is overdue");
    }

    #[test]
    fn deadlines_skip_weekends_and_holidays() {
        let cal = kefu_sla::Calendar::china_default().unwrap();
        let day = |m, d| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
        // Wednesday 30 September + 1: the National Day holiday is skipped.
        assert_eq!(nth_working_day(&cal, day(9, 30), 1), day(10, 8));
        // Friday 9 October + 1: Saturday the 10th is a make-up working day.
        assert_eq!(nth_working_day(&cal, day(10, 9), 1), day(10, 10));
        // Saturday 10-10 + 1: Sunday is rest, Monday the 12th works.
        assert_eq!(nth_working_day(&cal, day(10, 10), 1), day(10, 12));
    }
}

/// A cycle's settings, checked at opening and kept with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub grades: Vec<Band>,
    pub bonus_base_fen: i64,
    pub overrides: BTreeMap<String, i64>,
    pub honours: Vec<HonourRule>,
    /// Business days for self-assessment, review, calibration, acknowledgement.
    pub step_days: [i32; 4],
}

impl Settings {
    pub fn base_of(&self, staff: &str) -> i64 {
        self.overrides.get(staff).copied().unwrap_or(self.bonus_base_fen)
    }
}

/// What a close took from the source services for one person.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Source (enum number) → figure.
    pub figures: BTreeMap<i32, f64>,
    /// The counts behind them (tickets handled, ratings, …), for explaining.
    pub basis: BTreeMap<String, f64>,
    pub taken_at: i64,
}
