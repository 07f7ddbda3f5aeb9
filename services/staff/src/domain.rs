//! Directory rules: what a staff id and a team code look like, and that the
//! reporting line has no cycle. No I/O.
use kefu_kit::Error;

/// A staff id: 1–64 of a–z, 0–9, '-', '_' and '.', kept in lower case.
pub fn staff_id(field: &str, raw: &str) -> Result<String, Error> {
    let s = raw.trim().to_ascii_lowercase();
    let ok = (1..=64).contains(&s.len())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    if !ok {
        return Err(Error::invalid(field, "is not a staff id (1–64 of a–z, 0–9, '-', '_', '.')"));
    }
    Ok(s)
}

/// A team code: 1–64 of a–z, 0–9, '-' and '_', kept in lower case.
pub fn team_code(field: &str, raw: &str) -> Result<String, Error> {
    let s = raw.trim().to_ascii_lowercase();
    let ok = (1..=64).contains(&s.len())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_'));
    if !ok {
        return Err(Error::invalid(field, "is not a team code (1–64 of a–z, 0–9, '-', '_')"));
    }
    Ok(s)
}

/// Whether making `manager` the manager of `person` closes a loop, given
/// each person's manager (`manager_of`): walks up from `manager`.
pub fn closes_loop(person: &str, manager: &str, manager_of: impl Fn(&str) -> Option<String>) -> bool {
    let mut at = manager.to_owned();
    for _ in 0..10_000 {
        if at == person {
            return true;
        }
        match manager_of(&at) {
            Some(m) if !m.is_empty() => at = m,
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn ids_and_codes_are_checked_and_lower_cased() {
        assert_eq!(staff_id("s", " Agent-7 ").unwrap(), "agent-7");
        assert!(staff_id("s", "王芳").is_err());
        assert!(staff_id("s", "").is_err());
        assert_eq!(team_code("t", "Tax-Experts").unwrap(), "tax-experts");
        assert!(team_code("t", "a.b").is_err());
    }

    #[test]
    fn a_reporting_line_may_not_loop() {
        let line: HashMap<&str, &str> = [("a", "b"), ("b", "c"), ("c", "")].into_iter().collect();
        let up = |p: &str| line.get(p).map(|m| (*m).to_owned());
        assert!(closes_loop("c", "a", up), "c → a → b → c");
        assert!(!closes_loop("d", "a", up));
        assert!(closes_loop("a", "a", up), "nobody manages themselves");
    }
}
