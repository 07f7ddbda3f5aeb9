//! Complaint rules: the workflow as a state machine, complaint numbers, the
//! category taxonomy and what makes a complaint a repeat. No I/O.
use kefu_kit::Error;
use kefu_proto::complaints::v1::{ComplaintAction as A, ComplaintState as S};

/// How far back an earlier complaint of the same customer and category
/// makes a new one a repeat (90 days).
pub const REPEAT_WINDOW_MS: i64 = 90 * 24 * 3600 * 1000;

/// The taxonomy a firm starts with: code, Chinese label.
pub const CATEGORIES: &[(&str, &str)] = &[
    ("service_attitude", "服务态度"),
    ("professional_error", "专业差错"),
    ("timeliness", "办理时效"),
    ("fee_dispute", "收费争议"),
    ("information_security", "信息安全"),
    ("communication", "沟通不畅"),
    ("other", "其他"),
];

/// A category code as written: 1–40 characters of a–z, 0–9 and _ (whether
/// it is in the firm's taxonomy is the store's to say).
pub fn category(field: &str, raw: &str) -> Result<String, Error> {
    let c = raw.trim();
    if c.is_empty() || c.len() > 40 || !c.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_')
    {
        return Err(Error::invalid(field, "is not a category code (1–40 characters of a–z, 0–9 and _)"));
    }
    Ok(c.to_owned())
}

/// `TS-2026-000123`: the year received and a number counted per year.
pub fn number(year: i32, n: i64) -> String {
    format!("TS-{year}-{n:06}")
}

/// A complaint reference: its id (a UUID) or its number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComplaintRef {
    Id(String),
    Number(String),
}

pub fn complaint_ref(field: &str, raw: &str) -> Result<ComplaintRef, Error> {
    let r = raw.trim();
    let up = r.to_ascii_uppercase();
    if let Some(rest) = up.strip_prefix("TS-") {
        let ok = rest.len() == 11
            && rest.as_bytes()[4] == b'-'
            && rest[..4].chars().all(|c| c.is_ascii_digit())
            && rest[5..].chars().all(|c| c.is_ascii_digit());
        if ok {
            return Ok(ComplaintRef::Number(up));
        }
        return Err(Error::invalid(field, "is not a complaint number like TS-2026-000123"));
    }
    kefu_kit::parse::id(field, r).map(ComplaintRef::Id)
}

/// Where an action leads from a state, if it is allowed there.
pub fn next_state(from: S, action: A) -> Option<S> {
    use A::*;
    Some(match (from, action) {
        (S::Received, Acknowledge) => S::Acknowledged,
        (S::Acknowledged, GivePreliminaryOpinion) => S::PreliminaryOpinionGiven,
        // An opinion may come at once, with the acknowledgement.
        (S::Received, GivePreliminaryOpinion) => S::PreliminaryOpinionGiven,
        (S::PreliminaryOpinionGiven, StartInvestigation) => S::Investigating,
        (S::Investigating, ProposeResponse) => S::ResponseProposed,
        (S::ResponseProposed, CustomerAccepts) => S::Accepted,
        (S::ResponseProposed, CustomerRejects) => S::Rejected,
        (S::Rejected, StartMediation) => S::InMediation,
        (S::Rejected | S::InMediation, ReferToLegal) => S::LegalReferral,
        // Mediation settles it; a court or arbitration concludes it; or the
        // customer, having rejected the response, declines mediation and
        // legal channels (the reason records it).
        (S::Accepted | S::Rejected | S::InMediation | S::LegalReferral, Close) => S::Closed,
        (S::Closed, Reopen) => S::Investigating,
        _ => return None,
    })
}

/// The actions allowed from a state (for error messages and people).
pub fn allowed(from: S) -> Vec<A> {
    ALL_ACTIONS.iter().copied().filter(|a| next_state(from, *a).is_some()).collect()
}

pub const ALL_ACTIONS: [A; 10] = [
    A::Acknowledge,
    A::GivePreliminaryOpinion,
    A::StartInvestigation,
    A::ProposeResponse,
    A::CustomerAccepts,
    A::CustomerRejects,
    A::StartMediation,
    A::ReferToLegal,
    A::Close,
    A::Reopen,
];

/// The next state, or FAILED_PRECONDITION naming what is allowed.
pub fn transition(from: S, action: A) -> Result<S, Error> {
    next_state(from, action).ok_or_else(|| {
        use kefu_proto::ProtoEnum;
        let allowed: Vec<&str> = allowed(from).into_iter().map(ProtoEnum::name).collect();
        Error::FailedPrecondition(format!(
            "{} is not allowed when the complaint is {}; allowed: {}",
            action.name(),
            from.name(),
            if allowed.is_empty() { "none".to_owned() } else { allowed.join(", ") }
        ))
    })
}

/// States in which a complaint is still being handled.
pub fn is_open(s: S) -> bool {
    !matches!(s, S::Closed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_happy_path_and_the_long_way_round_reach_closed() {
        let happy = [
            A::Acknowledge,
            A::GivePreliminaryOpinion,
            A::StartInvestigation,
            A::ProposeResponse,
            A::CustomerAccepts,
            A::Close,
        ];
        let mut s = S::Received;
        for a in happy {
            s = transition(s, a).unwrap();
        }
        assert_eq!(s, S::Closed);
        let long = [
            A::Acknowledge,
            A::GivePreliminaryOpinion,
            A::StartInvestigation,
            A::ProposeResponse,
            A::CustomerRejects,
            A::StartMediation,
            A::ReferToLegal,
            A::Close,
            A::Reopen,
        ];
        let mut s = S::Received;
        for a in long {
            s = transition(s, a).unwrap();
        }
        assert_eq!(s, S::Investigating);
    }

    #[test]
    fn a_wrong_step_names_the_allowed_ones() {
        let e = transition(S::Received, A::Close).unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("COMPLAINT_ACTION_ACKNOWLEDGE") && m.contains("COMPLAINT_ACTION_GIVE_PRELIMINARY_OPINION"),
            "{m}"
        );
        assert!(matches!(e, Error::FailedPrecondition(_)));
        for s in [S::Received, S::Investigating, S::Closed, S::LegalReferral] {
            assert!(!allowed(s).is_empty(), "{s:?} is not a dead end");
        }
    }

    #[test]
    fn numbers_and_references() {
        assert_eq!(number(2026, 123), "TS-2026-000123");
        assert_eq!(complaint_ref("id", " ts-2026-000123 ").unwrap(), ComplaintRef::Number("TS-2026-000123".into()));
        for bad in ["TS-26-1", "TS-2026-12345a", ""] {
            assert!(complaint_ref("id", bad).is_err(), "{bad:?}");
        }
        assert_eq!(category("category", " service_attitude ").unwrap(), "service_attitude");
        for bad in ["", "服务态度", "Rude", "a-b", &"x".repeat(41)] {
            assert!(category("category", bad).is_err(), "{bad:?}");
        }
    }
}

/// The largest attachment kept: 2 MiB.
pub const ATTACHMENT_MAX_BYTES: usize = 2 * 1024 * 1024;

/// What a file is, read from its contents (the declared type and the file
/// name's extension are not trusted alone); `None`: not a kind kept.
pub fn sniff(bytes: &[u8], file_name: &str) -> Option<&'static str> {
    let ext = file_name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    if bytes.starts_with(b"%PDF-") {
        return Some("application/pdf");
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some("image/png");
    }
    if bytes.starts_with(b"\xFF\xD8\xFF") {
        return Some("image/jpeg");
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        return Some("image/gif");
    }
    if bytes.len() > 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        return Some("image/webp");
    }
    if bytes.starts_with(b"PK\x03\x04") {
        // An Office Open XML package names its parts' types in one part.
        let ooxml = bytes.windows(19).any(|w| w == b"[Content_Types].xml");
        return match (ooxml, ext.as_str()) {
            (true, "docx") => Some("application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
            (true, "xlsx") => Some("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
            (true, "pptx") => Some("application/vnd.openxmlformats-officedocument.presentationml.presentation"),
            _ => None,
        };
    }
    let text = std::str::from_utf8(bytes).ok()?;
    text.chars().all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t')).then_some("text/plain")
}

#[cfg(test)]
mod sniff_tests {
    use super::sniff;

    #[test]
    fn files_are_known_by_their_contents_not_their_names() {
        assert_eq!(sniff(b"%PDF-1.7\n...", "a.pdf"), Some("application/pdf"));
        assert_eq!(sniff(b"%PDF-1.7\n...", "a.txt"), Some("application/pdf"), "the name does not decide");
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0", "x.png"), Some("image/png"));
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0", "x.jpg"), Some("image/jpeg"));
        assert_eq!(sniff("客户来电记录：\n十点致电。".as_bytes(), "note.txt"), Some("text/plain"));
        assert_eq!(sniff(b"MZ\x90\0\x03\0\0\0", "invoice.pdf"), None, "a Windows program is refused");
        assert_eq!(sniff(b"\x7fELF\x02\x01", "a.txt"), None);
        assert_eq!(sniff(b"PK\x03\x04 plain zip", "x.docx"), None, "a zip that is no Office document");
        assert_eq!(sniff(b"PK\x03\x04...[Content_Types].xml...", "x.docx").map(|t| t.contains("word")), Some(true));
        assert_eq!(sniff(b"PK\x03\x04...[Content_Types].xml...", "x.zip"), None);
    }
}

#[cfg(test)]
mod closing_tests {
    use super::*;

    #[test]
    fn a_rejected_response_may_close_when_mediation_is_declined() {
        assert_eq!(transition(S::Rejected, A::Close).unwrap(), S::Closed);
        assert!(allowed(S::Rejected).contains(&A::StartMediation), "mediation stays on offer");
    }
}
