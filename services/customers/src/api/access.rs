//! Who may call what. The auth layer enforces [`ACCESS`] before any handler
//! runs; the finer rule on unmasked tax profiles is applied by
//! `tax_profile::get` with [`SENSITIVE_READERS`].
use kefu_kit::{
    access::{ANYONE, Access, MANAGERS, READERS, WRITERS},
    auth::Role,
};

const IMPORTERS: &[Role] = &[Role::Supervisor, Role::Admin, Role::Service];
const EXPORTERS: &[Role] = &[Role::Supervisor, Role::Admin, Role::Service];
const AUDITORS: &[Role] = &[Role::Auditor, Role::Admin];
/// Services that erase what they hold when a customer is erased.
const ERASURE_FOLLOWERS: &[Role] = &[Role::Service, Role::Auditor, Role::Admin];
/// Legal holds are placed by the complaints service or an admin.
const HOLDERS: &[Role] = &[Role::Service, Role::Admin];
const HOLD_READERS: &[Role] = &[Role::Supervisor, Role::Admin, Role::Auditor, Role::Service];

/// Roles that may read a tax profile unmasked (with a stated purpose).
pub(super) const SENSITIVE_READERS: &[Role] = &[Role::Supervisor, Role::Admin, Role::Service];

/// Who may call each RPC; the auth layer enforces it before a handler runs.
pub static ACCESS: Access = Access {
    service: "kefu.customers.v1.CustomerService",
    rules: &[
        ("CreateCustomer", WRITERS),
        ("GetCustomer", READERS),
        ("UpdateCustomer", WRITERS),
        ("ListCustomers", READERS),
        ("ArchiveCustomer", MANAGERS),
        ("ImportCustomers", IMPORTERS),
        ("CreateContact", WRITERS),
        ("UpdateContact", WRITERS),
        ("DeleteContact", WRITERS),
        ("UpdateTaxProfile", WRITERS),
        ("GetTaxProfile", READERS),
        ("CreateConsent", WRITERS),
        ("RevokeConsent", WRITERS),
        ("ListConsents", READERS),
        ("ExportCustomerData", EXPORTERS),
        ("EraseCustomer", MANAGERS),
        ("ListErasures", ERASURE_FOLLOWERS),
        ("PlaceLegalHold", HOLDERS),
        ("ReleaseLegalHold", HOLDERS),
        ("ListLegalHolds", HOLD_READERS),
        ("ProposeChange", WRITERS),
        ("GetApproval", READERS),
        ("ListApprovals", READERS),
        ("ApproveChange", MANAGERS),
        ("RejectChange", MANAGERS),
        ("WithdrawChange", WRITERS),
        ("ListAccessLog", AUDITORS),
        ("ListAuditEntries", AUDITORS),
        ("VerifyAuditChain", AUDITORS),
        ("SetFollowUpPlan", WRITERS),
        ("GetFollowUpPlan", WRITERS),
        ("ListDueFollowUps", WRITERS),
        ("RecordFollowUpVisit", WRITERS),
        ("ListFollowUpVisits", READERS),
        ("ListFestivals", ANYONE),
        ("ListGreetingTargets", WRITERS),
        ("MarkGreetingSent", WRITERS),
    ],
};
