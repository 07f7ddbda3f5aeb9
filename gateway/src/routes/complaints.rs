//! The complaints service's REST routes.
use super::{Body, Route};

pub(super) static ROUTES: &[Route] = &[
    r!(
        "POST",
        "/api/v1/complaints",
        "kefu.complaints.v1.ComplaintService/RecordComplaint",
        Body::All,
        [],
        None,
        Some("request_id"),
        "Record a complaint (any channel, a referral, or a ticket escalated)"
    ),
    r!(
        "GET",
        "/api/v1/complaints",
        "kefu.complaints.v1.ComplaintService/ListComplaints",
        Body::None,
        [],
        None,
        None,
        "Complaints, newest first"
    ),
    r!(
        "GET",
        "/api/v1/complaints/{id}",
        "kefu.complaints.v1.ComplaintService/GetComplaint",
        Body::None,
        [("id", "id")],
        None,
        None,
        "A complaint by id or number (TS-2026-000123)"
    ),
    r!(
        "POST",
        "/api/v1/complaints/{id}/transitions",
        "kefu.complaints.v1.ComplaintService/TransitionComplaint",
        Body::All,
        [("id", "id")],
        Some("etag"),
        None,
        "One step of the complaint workflow, with its reason"
    ),
    r!(
        "GET",
        "/api/v1/complaints/{id}/history",
        "kefu.complaints.v1.ComplaintService/ListComplaintHistory",
        Body::None,
        [("id", "id")],
        None,
        None,
        "Who moved the complaint, when and why"
    ),
    r!(
        "GET",
        "/api/v1/complaint-categories",
        "kefu.complaints.v1.ComplaintService/ListComplaintCategories",
        Body::None,
        [],
        None,
        None,
        "The complaint categories with their labels"
    ),
    r!(
        "PUT",
        "/api/v1/complaints/{id}/finding",
        "kefu.complaints.v1.ComplaintService/RecordFinding",
        Body::All,
        [("id", "id")],
        Some("etag"),
        None,
        "The investigation's finding: root cause, who was responsible, upheld"
    ),
    r!(
        "POST",
        "/api/v1/complaints/{id}/actions",
        "kefu.complaints.v1.ComplaintService/AddCorrectiveAction",
        Body::All,
        [("id", "complaint_id")],
        None,
        Some("request_id"),
        "Add a corrective or preventive action"
    ),
    r!(
        "GET",
        "/api/v1/corrective-actions",
        "kefu.complaints.v1.ComplaintService/ListCorrectiveActions",
        Body::None,
        [],
        None,
        None,
        "A complaint's actions (complaintId), or every open one, overdue first"
    ),
    r!(
        "POST",
        "/api/v1/corrective-actions/{id}/complete",
        "kefu.complaints.v1.ComplaintService/CompleteCorrectiveAction",
        Body::All,
        [("id", "id")],
        Some("etag"),
        None,
        "Complete an action with its evidence"
    ),
    r!(
        "POST",
        "/api/v1/corrective-actions/{id}/verify",
        "kefu.complaints.v1.ComplaintService/VerifyCorrectiveAction",
        Body::All,
        [("id", "id")],
        Some("etag"),
        None,
        "Verify an action's effect (not by its owner)"
    ),
    r!(
        "POST",
        "/api/v1/complaints/{id}/decision",
        "kefu.complaints.v1.ComplaintService/RecordDecisionSent",
        Body::All,
        [("id", "id")],
        Some("etag"),
        None,
        "The decision as communicated to the customer"
    ),
    r!(
        "POST",
        "/api/v1/complaints/{id}/rating",
        "kefu.complaints.v1.ComplaintService/RateComplaintHandling",
        Body::All,
        [("id", "id")],
        None,
        None,
        "The customer's satisfaction with the handling"
    ),
    r!(
        "GET",
        "/api/v1/complaints-stats",
        "kefu.complaints.v1.ComplaintService/GetComplaintStats",
        Body::None,
        [],
        None,
        None,
        "Complaint monitoring for a period"
    ),
    r!(
        "GET",
        "/api/v1/staff/{staff}/complaint-stats",
        "kefu.complaints.v1.ComplaintService/GetStaffComplaintStats",
        Body::None,
        [("staff", "staff")],
        None,
        None,
        "One staff member's complaints in a period"
    ),
    r!(
        "GET",
        "/api/v1/complaints/{id}/deadlines",
        "kefu.complaints.v1.ComplaintService/GetComplaintDeadlines",
        Body::None,
        [("id", "id")],
        None,
        None,
        "A complaint's deadlines and its corrective actions' due dates"
    ),
    r!(
        "GET",
        "/api/v1/complaints-sla/dashboard",
        "kefu.complaints.v1.ComplaintService/GetComplaintSlaDashboard",
        Body::None,
        [],
        None,
        None,
        "Complaint deadlines open, at risk and breached, by queue and handler"
    ),
    r!(
        "POST",
        "/api/v1/complaints/{id}/attachments",
        "kefu.complaints.v1.ComplaintService/AddComplaintAttachment",
        Body::All,
        [("id", "complaint_id")],
        None,
        Some("request_id"),
        "Attach evidence (content base64 in JSON; at most 2 MiB)"
    ),
    r!(
        "GET",
        "/api/v1/complaints/{id}/attachments",
        "kefu.complaints.v1.ComplaintService/ListComplaintAttachments",
        Body::None,
        [("id", "complaint_id")],
        None,
        None,
        "A complaint's attachments (no contents)"
    ),
    r!(
        "GET",
        "/api/v1/complaint-attachments/{id}",
        "kefu.complaints.v1.ComplaintService/GetComplaintAttachment",
        Body::None,
        [("id", "id")],
        None,
        None,
        "One attachment with its contents, for a stated purpose (recorded)"
    ),
    r!(
        "PUT",
        "/api/v1/complaint-categories",
        "kefu.complaints.v1.ComplaintService/SetComplaintCategories",
        Body::All,
        [],
        Some("etag"),
        None,
        "Replace the complaint category taxonomy"
    ),
    r!(
        "GET",
        "/api/v1/complaint-audit-entries",
        "kefu.complaints.v1.ComplaintService/ListComplaintAuditEntries",
        Body::None,
        [],
        None,
        None,
        "Read the complaints audit trail (reads in the clear, category changes, erasures)"
    ),
    r!(
        "POST",
        "/api/v1/complaint-audit-entries/verify",
        "kefu.complaints.v1.ComplaintService/VerifyComplaintAuditChain",
        Body::None,
        [],
        None,
        None,
        "Verify the complaints audit chain (optionally against a kept checkpoint)"
    ),
];
