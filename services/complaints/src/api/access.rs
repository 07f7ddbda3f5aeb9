//! Who may call each RPC. The auth layer enforces this table before any
//! handler runs; finer rules (agents see the complaints they recorded or
//! handle) are in the handlers.
use kefu_kit::{
    access::{ANYONE, Access, MANAGERS, READERS, WRITERS},
    auth::Role,
};

/// People who act on a complaint's actions (owners are often agents).
const ACTORS: &[Role] = &[Role::Agent, Role::Supervisor, Role::Admin];
/// The customer channels (survey, chat, mail integrations) under the service role.
const CUSTOMER_CHANNELS: &[Role] = &[Role::Service];
/// Monitoring: supervisors, HR, admins, auditors and reporting systems.
const MONITORING: &[Role] = &[Role::Supervisor, Role::Hr, Role::Admin, Role::Auditor, Role::Service];
/// Evidence is read by those who handle complaints and by auditors.
const EVIDENCE_READERS: &[Role] = &[Role::Agent, Role::Supervisor, Role::Admin, Role::Auditor];
/// The live deadline board.
const DASHBOARD: &[Role] = &[Role::Agent, Role::Supervisor, Role::Admin];
/// The audit trail.
const AUDITORS: &[Role] = &[Role::Auditor, Role::Admin];
/// Per-person figures feed performance reviews.
const STAFF_FIGURES: &[Role] = &[Role::Supervisor, Role::Hr, Role::Admin, Role::Service];

pub static ACCESS: Access = Access {
    service: "kefu.complaints.v1.ComplaintService",
    rules: &[
        ("RecordComplaint", WRITERS),
        ("GetComplaint", READERS),
        ("ListComplaints", READERS),
        ("TransitionComplaint", WRITERS),
        ("ListComplaintHistory", READERS),
        ("ListComplaintCategories", ANYONE),
        ("SetComplaintCategories", MANAGERS),
        ("RecordFinding", MANAGERS),
        ("AddCorrectiveAction", MANAGERS),
        ("CompleteCorrectiveAction", ACTORS),
        ("VerifyCorrectiveAction", MANAGERS),
        ("ListCorrectiveActions", READERS),
        ("RecordDecisionSent", WRITERS),
        ("RateComplaintHandling", CUSTOMER_CHANNELS),
        ("GetComplaintStats", MONITORING),
        ("GetStaffComplaintStats", STAFF_FIGURES),
        ("GetComplaintDeadlines", READERS),
        ("GetComplaintSlaDashboard", DASHBOARD),
        ("WatchComplaintDeadlines", WRITERS),
        ("AddComplaintAttachment", ACTORS),
        ("ListComplaintAttachments", EVIDENCE_READERS),
        ("GetComplaintAttachment", EVIDENCE_READERS),
        ("ListComplaintAuditEntries", AUDITORS),
        ("VerifyComplaintAuditChain", AUDITORS),
    ],
};
