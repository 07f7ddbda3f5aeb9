//! Reports: a cycle's distribution per team and indicator averages, trends
//! across cycles, and the Excel export.
use std::collections::BTreeMap;

use kefu_kit::{
    Error,
    auth::{Principal, Role},
    parse,
};
use kefu_proto::ProtoEnum as _;
use kefu_proto::performance::v1::{self as pb, EvaluationState as S};
use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};

use super::{PerformanceApi, cycle_named, eval_state, scheme_body, sees, settings, totals};
use crate::{
    domain,
    store::{self, EvaluationRow},
};

/// Whether an evaluation has a result to report (reviewed at least).
fn scored(e: &EvaluationRow) -> bool {
    matches!(eval_state(e), S::Calibration | S::Acknowledgement | S::Appealed | S::Final)
}

fn honour_names(e: &EvaluationRow) -> Result<Vec<String>, Error> {
    let h: Vec<(String, String)> = store::json("evaluations", &e.id, &e.honours)?;
    Ok(h.into_iter().map(|(n, _)| n).collect())
}

pub(super) async fn cycle_report(
    api: &PerformanceApi,
    p: &Principal,
    r: pb::GetCycleReportRequest,
) -> Result<pb::CycleReport, Error> {
    let mut conn = api.reads.acquire().await?;
    let c = cycle_named(&mut conn, &r.id).await?;
    let all = store::evaluations(&mut conn, &c.id).await?;
    let s = settings(&c)?;
    let rows: Vec<&EvaluationRow> = all.iter().filter(|e| sees(p, e)).collect();
    let mut teams: BTreeMap<String, Vec<&EvaluationRow>> = BTreeMap::new();
    for e in rows.iter().filter(|e| scored(e)) {
        teams.entry(e.team.clone()).or_default().push(e);
    }
    let teams = teams
        .into_iter()
        .map(|(team, es)| pb::TeamDistribution {
            team,
            evaluated: i32::try_from(es.len()).unwrap_or(0),
            average_score: domain::round2(
                es.iter().map(|e| e.total_centi as f64 / 100.0).sum::<f64>() / es.len() as f64,
            ),
            grades: s
                .grades
                .iter()
                .map(|b| pb::GradeCount {
                    grade: b.grade.clone(),
                    count: i32::try_from(es.iter().filter(|e| e.grade == b.grade).count()).unwrap_or(0),
                })
                .collect(),
        })
        .collect();
    // Indicator averages over the people reported, by scheme indicator code.
    let mut sums: BTreeMap<String, (String, i32, f64, f64, usize)> = BTreeMap::new();
    let mut order = Vec::new();
    for e in rows.iter().filter(|e| eval_state(e) != S::Pending) {
        let body = scheme_body(&mut conn, &e.scheme_code, e.scheme_version).await?;
        let t = totals(&body, e)?;
        for (i, sc) in body.indicators.iter().zip(&t.indicators) {
            if !sc.scored {
                continue;
            }
            let entry = sums.entry(i.code.clone()).or_insert_with(|| {
                order.push(i.code.clone());
                (i.name.clone(), i.group, 0.0, 0.0, 0)
            });
            entry.2 += sc.value;
            entry.3 += sc.score;
            entry.4 += 1;
        }
    }
    let indicators = order
        .iter()
        .filter_map(|code| sums.get(code).map(|x| (code, x)))
        .map(|(code, (name, group, v, sc, n))| pb::IndicatorAverage {
            code: code.clone(),
            name: name.clone(),
            group: *group,
            average_value: domain::round2(v / *n as f64),
            average_score: domain::round2(sc / *n as f64),
        })
        .collect();
    let mut results = Vec::new();
    for e in &rows {
        results.push(pb::ResultRow {
            staff_id: e.staff_id.clone(),
            display_name: e.display_name.clone(),
            team: e.team.clone(),
            total_score: e.total_centi as f64 / 100.0,
            grade: e.grade.clone(),
            bonus_fen: e.bonus_fen,
            promotion_recommended: e.promotion_recommended != 0,
            honours: honour_names(e)?,
        });
    }
    Ok(pb::CycleReport {
        cycle: Some(super::cycle_for(p, &c, i32::try_from(all.len()).unwrap_or(0))?),
        teams,
        indicators,
        results,
    })
}

pub(super) async fn trend(api: &PerformanceApi, p: &Principal, r: pb::GetTrendRequest) -> Result<pb::Trend, Error> {
    let staff = parse::line("staff_id", &r.staff_id, 64)?.to_ascii_lowercase();
    let team = parse::line("team", &r.team, 64)?.to_ascii_lowercase();
    if !staff.is_empty() && !team.is_empty() {
        return Err(Error::invalid("team", "ask for a person's trend or a team's, not both"));
    }
    let staff = if staff.is_empty() && team.is_empty() { p.subject.clone() } else { staff };
    let mut conn = api.reads.acquire().await?;
    let rows = store::evaluations_of(
        &mut conn,
        (!staff.is_empty()).then_some(staff.as_str()),
        (!team.is_empty()).then_some(team.as_str()),
    )
    .await?;
    let visible: Vec<&EvaluationRow> = rows.iter().filter(|e| sees(p, e) && scored(e)).collect();
    if !team.is_empty() && visible.is_empty() && !rows.is_empty() && !p.has_any(&[Role::Hr, Role::Admin, Role::Auditor])
    {
        return Err(Error::PermissionDenied(format!("you do not review team {team}")));
    }
    let mut by_cycle: BTreeMap<String, Vec<&EvaluationRow>> = BTreeMap::new();
    for e in visible {
        by_cycle.entry(e.cycle_id.clone()).or_default().push(e);
    }
    let mut points = Vec::new();
    for (cycle_id, es) in by_cycle {
        let Some(c) = store::cycle(&mut conn, &cycle_id).await? else { continue };
        let avg = es.iter().map(|e| e.total_centi as f64 / 100.0).sum::<f64>() / es.len() as f64;
        points.push((
            c.from_date.clone(),
            pb::TrendPoint {
                cycle_id,
                period: c.period,
                score: domain::round2(avg),
                grade: if team.is_empty() { es[0].grade.clone() } else { String::new() },
                evaluated: i32::try_from(es.len()).unwrap_or(0),
            },
        ));
    }
    points.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(pb::Trend {
        staff_id: if team.is_empty() { staff } else { String::new() },
        team,
        points: points.into_iter().map(|p| p.1).collect(),
    })
}

/// Text for a cell: never run as a formula.
fn text(ws: &mut Worksheet, row: u32, col: u16, s: &str) -> Result<(), XlsxError> {
    ws.write_string(row, col, parse::defuse_formula(s)).map(drop)
}

pub(super) async fn export(api: &PerformanceApi, r: pb::ExportCycleRequest) -> Result<pb::ExportCycleResponse, Error> {
    let mut conn = api.reads.acquire().await?;
    let c = cycle_named(&mut conn, &r.id).await?;
    let evals = store::evaluations(&mut conn, &c.id).await?;
    let mut breakdown = Vec::new();
    for e in &evals {
        let body = scheme_body(&mut conn, &e.scheme_code, e.scheme_version).await?;
        let t = totals(&body, e)?;
        for (i, sc) in body.indicators.iter().zip(t.indicators) {
            breakdown.push((e, i.clone(), sc));
        }
    }
    drop(conn);
    let state_label = |e: &EvaluationRow| eval_state(e).label_zh();
    let build = || -> Result<Vec<u8>, XlsxError> {
        let mut wb = Workbook::new();
        let bold = Format::new().set_bold();
        let money = Format::new().set_num_format("#,##0.00");
        let score = Format::new().set_num_format("0.00");
        let ws = wb.add_worksheet();
        ws.set_name("绩效结果")?;
        let headers = [
            "工号",
            "姓名",
            "团队",
            "岗位",
            "考核周期",
            "状态",
            "总分",
            "方案等级",
            "最终等级",
            "绩效系数(%)",
            "奖金基数(元)",
            "奖金(元)",
            "晋升建议",
            "荣誉",
            "自评意见",
            "主管评语",
            "校准理由",
            "申诉",
            "更正",
        ];
        for (i, h) in headers.iter().enumerate() {
            ws.write_string_with_format(0, u16::try_from(i).unwrap_or(0), *h, &bold)?;
        }
        for (n, e) in evals.iter().enumerate() {
            let row = u32::try_from(n + 1).unwrap_or(u32::MAX);
            let honours: Vec<(String, String)> = serde_json::from_str(&e.honours).unwrap_or_default();
            text(ws, row, 0, &e.staff_id)?;
            text(ws, row, 1, &e.display_name)?;
            text(ws, row, 2, &e.team)?;
            text(ws, row, 3, &e.position)?;
            text(ws, row, 4, &c.period)?;
            text(ws, row, 5, state_label(e))?;
            ws.write_number_with_format(row, 6, e.total_centi as f64 / 100.0, &score)?;
            text(ws, row, 7, &e.computed_grade)?;
            text(ws, row, 8, &e.grade)?;
            ws.write_number(row, 9, e.coefficient as f64)?;
            ws.write_number_with_format(row, 10, e.bonus_base_fen as f64 / 100.0, &money)?;
            ws.write_number_with_format(row, 11, e.bonus_fen as f64 / 100.0, &money)?;
            text(ws, row, 12, &e.promotion_detail)?;
            let h: Vec<String> = honours.iter().map(|(n, r)| format!("{n}：{r}")).collect();
            text(ws, row, 13, &h.join("\n"))?;
            text(ws, row, 14, &e.self_comment)?;
            text(ws, row, 15, &e.review_comment)?;
            text(ws, row, 16, &e.calibration_reason)?;
            let appeal = if e.appeal_reason.is_empty() {
                String::new()
            } else {
                format!(
                    "{}：{}；决定：{}",
                    if e.appeal_upheld != 0 { "申诉成立" } else { "申诉" },
                    e.appeal_reason,
                    e.appeal_decision
                )
            };
            text(ws, row, 17, &appeal)?;
            text(ws, row, 18, if e.corrected != 0 { "已更正" } else { "" })?;
        }
        ws.set_column_width(1, 10)?;
        ws.set_column_width(12, 40)?;
        ws.set_column_width(13, 40)?;
        let ws = wb.add_worksheet();
        ws.set_name("指标明细")?;
        for (i, h) in ["工号", "姓名", "维度", "指标", "数据", "得分", "权重(%)", "说明"].iter().enumerate()
        {
            ws.write_string_with_format(0, u16::try_from(i).unwrap_or(0), *h, &bold)?;
        }
        for (n, (e, ind, sc)) in breakdown.iter().enumerate() {
            let row = u32::try_from(n + 1).unwrap_or(u32::MAX);
            text(ws, row, 0, &e.staff_id)?;
            text(ws, row, 1, &e.display_name)?;
            text(ws, row, 2, domain::group_label(ind.group()))?;
            text(ws, row, 3, &ind.name)?;
            ws.write_number_with_format(row, 4, sc.value, &score)?;
            ws.write_number_with_format(row, 5, sc.score, &score)?;
            ws.write_number(row, 6, f64::from(ind.weight))?;
            text(ws, row, 7, &sc.explanation)?;
        }
        ws.set_column_width(7, 60)?;
        wb.save_to_buffer()
    };
    let content = build().map_err(|e| Error::Internal(anyhow::anyhow!("the workbook could not be written: {e}")))?;
    Ok(pb::ExportCycleResponse {
        filename: format!("绩效结果-{}-{}.xlsx", c.period, c.team),
        content_type: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".into(),
        content,
    })
}
