//! Optimistic concurrency: a resource's etag is its version number.
use crate::Error;

/// The etag of a resource at `version`.
pub fn of(version: i64) -> String {
    version.to_string()
}

/// Passes when `given` is empty (no precondition) or names `version`;
/// otherwise ABORTED, telling the caller to reload.
pub fn check(what: &str, given: &str, version: i64) -> Result<(), Error> {
    let given = given.trim().trim_matches('"');
    if given.is_empty() || given == version.to_string() {
        return Ok(());
    }
    let shown: String = given.chars().take(32).collect();
    Err(Error::Aborted(format!("etag {shown:?} is stale (current {version}); reload the {what} and retry")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_etags_abort_and_matching_or_absent_ones_pass() {
        assert!(check("ticket", "", 3).is_ok());
        assert!(check("ticket", "3", 3).is_ok());
        assert!(check("ticket", "\"3\"", 3).is_ok());
        assert!(matches!(check("ticket", "2", 3), Err(Error::Aborted(m)) if m.contains("reload the ticket")));
    }
}
