//! Who may call each RPC. The auth layer enforces this table before any
//! handler runs; finer rules (agents see the complaints they recorded or
//! handle) are in the handlers.
use kefu_kit::access::{ANYONE, Access, READERS, WRITERS};

pub static ACCESS: Access = Access {
    service: "kefu.complaints.v1.ComplaintService",
    rules: &[
        ("RecordComplaint", WRITERS),
        ("GetComplaint", READERS),
        ("ListComplaints", READERS),
        ("TransitionComplaint", WRITERS),
        ("ListComplaintHistory", READERS),
        ("ListComplaintCategories", ANYONE),
    ],
};
