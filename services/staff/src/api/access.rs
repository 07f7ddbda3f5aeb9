//! Who may call each RPC; the auth layer enforces this table before any
//! handler runs.
use kefu_kit::{access::Access, auth::Role};

/// Everyone reads the directory (and services resolve references in it).
const EVERYONE: &[Role] = &[Role::Agent, Role::Supervisor, Role::Hr, Role::Admin, Role::Auditor, Role::Service];
/// HR keeps the people.
const HR: &[Role] = &[Role::Hr, Role::Admin];
/// Supervisors and HR keep teams and queues.
const TEAM_KEEPERS: &[Role] = &[Role::Supervisor, Role::Hr, Role::Admin];

pub static ACCESS: Access = Access {
    service: "kefu.staff.v1.StaffService",
    rules: &[
        ("CreatePerson", HR),
        ("GetPerson", EVERYONE),
        ("UpdatePerson", HR),
        ("ListPeople", EVERYONE),
        ("CreateTeam", TEAM_KEEPERS),
        ("GetTeam", EVERYONE),
        ("ListTeams", EVERYONE),
        ("SetMembership", TEAM_KEEPERS),
        ("Resolve", EVERYONE),
    ],
};
