//! KPI schemes: defined by HR per position, versioned.
use std::collections::BTreeMap;

use kefu_kit::{Error, auth::Principal, error::Violations, parse};
use kefu_proto::performance::v1::{self as pb, Curve, IndicatorGroup, Source};

use super::PerformanceApi;
use crate::{
    domain::{self, Indicator, SchemeBody, Scoring, Threshold},
    store::{self, SchemeRow},
};

fn finite(v: &mut Violations, field: &str, x: f64) -> f64 {
    if !x.is_finite() || x.abs() > 1e9 {
        v.add(field, "is not a number kefu can use");
        return 0.0;
    }
    x
}

/// One indicator, checked (every bad field named).
fn indicator(v: &mut Violations, i: usize, x: &pb::Indicator) -> Indicator {
    let f = |name: &str| format!("scheme.indicators[{i}].{name}");
    let code = v.check(domain::code(&f("code"), &x.code)).unwrap_or_default();
    let name = v.check(parse::required_line(&f("name"), &x.name, 40)).unwrap_or_default();
    let group = v
        .check(parse::enumeration::<IndicatorGroup>(&f("group"), x.group, None))
        .unwrap_or(IndicatorGroup::Unspecified);
    let source = v.check(parse::enumeration::<Source>(&f("source"), x.source, None)).unwrap_or(Source::Unspecified);
    let curve = v.check(parse::enumeration::<Curve>(&f("curve"), x.curve, None)).unwrap_or(Curve::Unspecified);
    if !(1..=100).contains(&x.weight) {
        v.add(f("weight"), "is a percent of its group from 1 to 100");
    }
    let floor = finite(v, &f("floor"), x.floor);
    let target = finite(v, &f("target"), x.target);
    let manual = domain::is_manual(source);
    let scoring = match curve {
        Curve::Direct if manual => Scoring::Direct,
        Curve::Direct => {
            v.add(f("curve"), "DIRECT is for manual indicators (a figure from a service needs a curve)");
            Scoring::Direct
        }
        _ if manual && source != Source::Unspecified => {
            v.add(f("curve"), "a manual indicator is scored directly (CURVE_DIRECT)");
            Scoring::Direct
        }
        Curve::Linear => {
            if floor >= target {
                v.add(f("target"), "LINEAR scores 100 at target and 0 at floor: target must be above floor");
            }
            Scoring::Linear { floor, target }
        }
        Curve::Inverse => {
            if floor <= target {
                v.add(f("floor"), "INVERSE (lower is better) scores 0 at floor: floor must be above target");
            }
            Scoring::Inverse { floor, target }
        }
        Curve::Thresholds => {
            if x.thresholds.is_empty() || x.thresholds.len() > 10 {
                v.add(f("thresholds"), "give 1 to 10 thresholds, ascending");
            }
            let mut steps = Vec::new();
            for (k, t) in x.thresholds.iter().enumerate() {
                let at_least = finite(v, &format!("{}[{k}].at_least", f("thresholds")), t.at_least);
                if !(0.0..=100.0).contains(&t.score) {
                    v.add(format!("{}[{k}].score", f("thresholds")), "is outside the scale 0–100");
                }
                if steps.last().is_some_and(|p: &Threshold| p.at_least >= at_least) {
                    v.add(format!("{}[{k}].at_least", f("thresholds")), "thresholds go up: each above the one before");
                }
                steps.push(Threshold { at_least, score: t.score });
            }
            Scoring::Thresholds { steps }
        }
        Curve::Unspecified => Scoring::Direct,
    };
    Indicator { code, name, group: group as i32, source: source as i32, scoring, weight: x.weight }
}

fn scheme_pb(s: &SchemeRow) -> Result<pb::Scheme, Error> {
    let body: SchemeBody = store::json("schemes", &s.code, &s.body)?;
    Ok(pb::Scheme {
        code: s.code.clone(),
        version: i32::try_from(s.version).unwrap_or(0),
        name: s.name.clone(),
        position: s.position.clone(),
        groups: body.groups.iter().map(|(g, w)| pb::GroupWeight { group: *g, weight: *w }).collect(),
        indicators: body
            .indicators
            .iter()
            .map(|i| {
                let (curve, floor, target, thresholds) = match &i.scoring {
                    Scoring::Linear { floor, target } => (Curve::Linear, *floor, *target, vec![]),
                    Scoring::Inverse { floor, target } => (Curve::Inverse, *floor, *target, vec![]),
                    Scoring::Thresholds { steps } => (
                        Curve::Thresholds,
                        0.0,
                        0.0,
                        steps.iter().map(|t| pb::Threshold { at_least: t.at_least, score: t.score }).collect(),
                    ),
                    Scoring::Direct => (Curve::Direct, 0.0, 0.0, vec![]),
                };
                pb::Indicator {
                    code: i.code.clone(),
                    name: i.name.clone(),
                    group: i.group,
                    source: i.source,
                    curve: curve as i32,
                    floor,
                    target,
                    thresholds,
                    weight: i.weight,
                }
            })
            .collect(),
        defined_by: s.defined_by.clone(),
        define_time: parse::ts(s.defined_at),
    })
}

pub(super) async fn define(
    api: &PerformanceApi,
    p: &Principal,
    r: pb::DefineSchemeRequest,
) -> Result<pb::Scheme, Error> {
    let x = r.scheme.unwrap_or_default();
    let mut v = Violations::new();
    let code = v.check(domain::code("scheme.code", &x.code)).unwrap_or_default();
    let name = v.check(parse::required_line("scheme.name", &x.name, 64)).unwrap_or_default();
    let position = v.check(parse::required_line("scheme.position", &x.position, 64)).unwrap_or_default();
    let mut groups = BTreeMap::new();
    for (i, g) in x.groups.iter().enumerate() {
        let group = v.check(parse::enumeration::<IndicatorGroup>(&format!("scheme.groups[{i}].group"), g.group, None));
        if !(1..=100).contains(&g.weight) {
            v.add(format!("scheme.groups[{i}].weight"), "is a percent of the total from 1 to 100");
        }
        if let Some(group) = group
            && groups.insert(group as i32, g.weight).is_some()
        {
            v.add(format!("scheme.groups[{i}].group"), "is listed twice");
        }
    }
    if x.indicators.is_empty() || x.indicators.len() > 40 {
        v.add("scheme.indicators", "give 1 to 40 indicators");
    }
    let indicators: Vec<Indicator> =
        x.indicators.iter().enumerate().map(|(i, ind)| indicator(&mut v, i, ind)).collect();
    for (i, ind) in indicators.iter().enumerate() {
        if indicators[..i].iter().any(|o| o.code == ind.code) {
            v.add(format!("scheme.indicators[{i}].code"), format!("{} is used twice", ind.code));
        }
    }
    let body = SchemeBody { groups, indicators };
    domain::check_weights(&mut v, &body);
    v.finish()?;
    let body_json = store::to_json(&body)?;
    let mut tx = api.pool.begin().await?;
    let current = store::scheme(&mut tx, &code, 0).await?;
    if let Some(c) = &current
        && (&c.name, &c.position, &c.body) == (&name, &position, &body_json)
    {
        // The same definition again (a retry): the current version.
        return scheme_pb(c);
    }
    let row = SchemeRow {
        code,
        version: current.map_or(1, |c| c.version + 1),
        name,
        position,
        body: body_json,
        defined_by: p.subject.clone(),
        defined_at: api.now(),
    };
    if !store::insert_scheme(&mut tx, &row).await? {
        return Err(Error::Aborted(format!("scheme {} was changed at the same time; reload and retry", row.code)));
    }
    tx.commit().await?;
    scheme_pb(&row)
}

pub(super) async fn get(api: &PerformanceApi, r: pb::GetSchemeRequest) -> Result<pb::Scheme, Error> {
    let code = domain::code("code", &r.code)?;
    if r.version < 0 {
        return Err(Error::invalid("version", "is 0 (the current) or a version number"));
    }
    let mut conn = api.reads.acquire().await?;
    let s = store::scheme(&mut conn, &code, i64::from(r.version))
        .await?
        .ok_or_else(|| Error::NotFound(format!("scheme {code}")))?;
    scheme_pb(&s)
}

pub(super) async fn list(api: &PerformanceApi) -> Result<pb::ListSchemesResponse, Error> {
    let mut conn = api.reads.acquire().await?;
    let rows = store::schemes(&mut conn).await?;
    Ok(pb::ListSchemesResponse { schemes: rows.iter().map(scheme_pb).collect::<Result<_, _>>()? })
}

/// The newest scheme for a position (by code order when several).
pub(super) async fn for_position(conn: &mut sqlx::AnyConnection, position: &str) -> Result<Option<SchemeRow>, Error> {
    Ok(store::schemes(conn).await?.into_iter().find(|s| s.position == position))
}
