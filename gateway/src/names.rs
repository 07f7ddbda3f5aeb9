//! Display names beside staff ids in what the REST routes answer: wherever
//! a field that holds a staff id or a team code (an assignee, an author, an
//! owner, a reviewer …) has a value the staff directory knows, a sibling
//! `<field>Name` carries the name people read (王芳, 税务专家组). One
//! `Resolve` call per answer, with the caller's own token; if the directory
//! does not answer, the view goes out without names.
use std::collections::BTreeSet;

use serde_json::{Value, json};

/// The JSON fields (camelCase, as the REST views spell them) that hold a
/// staff id or a team code.
pub(crate) const STAFF_FIELDS: &[&str] = &[
    "assignee",
    "escalatedTo",
    "author",
    "owner",
    "handler",
    "staffId",
    "trainer",
    "reviewedBy",
    "responsibleStaff",
    "actor",
    "createdBy",
    "updatedBy",
    "decidedBy",
    "approvedBy",
    "proposedBy",
    "verifiedBy",
    "observer",
    "manager",
    "agent",
    "openedBy",
    "definedBy",
];

/// At most this many distinct ids are looked up for one answer.
const MAX_REFS: usize = 200;

fn collect(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                if let (true, Value::String(s)) = (STAFF_FIELDS.contains(&k.as_str()), x)
                    && !s.is_empty()
                    && s.len() <= 64
                    && out.len() < MAX_REFS
                {
                    out.insert(s.clone());
                }
                collect(x, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|x| collect(x, out)),
        _ => {}
    }
}

fn apply(v: &mut Value, names: &std::collections::HashMap<String, String>) {
    match v {
        Value::Object(map) => {
            let mut add = Vec::new();
            for (k, x) in map.iter() {
                if let (true, Value::String(s)) = (STAFF_FIELDS.contains(&k.as_str()), x)
                    && let Some(n) = names.get(s)
                {
                    add.push((format!("{k}Name"), n.clone()));
                }
            }
            for (k, n) in add {
                map.entry(k).or_insert(Value::String(n));
            }
            for x in map.values_mut() {
                apply(x, names);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|x| apply(x, names)),
        _ => {}
    }
}

/// Adds the names to `answer` (best effort).
pub(crate) async fn add(gw: &crate::Gateway, token: &str, answer: &mut Value) {
    let mut refs = BTreeSet::new();
    collect(answer, &mut refs);
    let names = lookup(gw, token, refs).await;
    if !names.is_empty() {
        apply(answer, &names);
    }
}

/// The directory's names for `refs` (those it knows; none when it does not
/// answer).
pub(crate) async fn lookup(
    gw: &crate::Gateway,
    token: &str,
    refs: BTreeSet<String>,
) -> std::collections::HashMap<String, String> {
    if refs.is_empty() || !gw.upstreams.contains_key("staff") {
        return Default::default();
    }
    let request = json!({ "refs": refs.iter().take(MAX_REFS).collect::<Vec<_>>() });
    let resolved = match gw.call_json(RESOLVE, token, request).await {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(status = e.status, "display names left out: the staff directory did not answer");
            return Default::default();
        }
    };
    resolved["resolved"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|r| r["kind"] != "REF_KIND_UNKNOWN")
                .filter_map(|r| Some((r["reference"].as_str()?.to_owned(), r["displayName"].as_str()?.to_owned())))
                .filter(|(_, n)| !n.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// One name at a time for a live stream, remembered for the stream's life.
#[derive(Default)]
pub(crate) struct Cache(tokio::sync::Mutex<std::collections::HashMap<String, Option<String>>>);

impl Cache {
    pub(crate) async fn name(&self, gw: &crate::Gateway, token: &str, id: &str) -> Option<String> {
        if id.is_empty() {
            return None;
        }
        let mut known = self.0.lock().await;
        if let Some(n) = known.get(id) {
            return n.clone();
        }
        let n = lookup(gw, token, BTreeSet::from([id.to_owned()])).await.remove(id);
        if known.len() < 10_000 {
            known.insert(id.to_owned(), n.clone());
        }
        n
    }
}

pub(crate) const RESOLVE: &str = "kefu.staff.v1.StaffService/Resolve";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_go_beside_the_staff_fields_at_any_depth() {
        let mut v = json!({"ticket": {"assignee": "agent-7", "subject": "agent-7"},
                           "timeline": [{"author": "agent-7"}, {"author": "nobody"}]});
        let mut refs = BTreeSet::new();
        collect(&v, &mut refs);
        assert_eq!(refs.into_iter().collect::<Vec<_>>(), vec!["agent-7".to_string(), "nobody".to_string()]);
        let names = [("agent-7".to_owned(), "王芳".to_owned())].into_iter().collect();
        apply(&mut v, &names);
        assert_eq!(v["ticket"]["assigneeName"], "王芳");
        assert!(v["ticket"].get("subjectName").is_none(), "only staff fields");
        assert_eq!(v["timeline"][0]["authorName"], "王芳");
        assert!(v["timeline"][1].get("authorName").is_none(), "unknown ids get no name");
    }
}
