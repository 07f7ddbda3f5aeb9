//! The staff directory's REST routes.
use super::{Body, Route};

pub(super) static ROUTES: &[Route] = &[
    r!(
        "POST",
        "/api/v1/staff/people",
        "kefu.staff.v1.StaffService/CreatePerson",
        Body::All,
        [],
        None,
        None,
        "Add a person to the staff directory"
    ),
    r!(
        "GET",
        "/api/v1/staff/people",
        "kefu.staff.v1.StaffService/ListPeople",
        Body::None,
        [],
        None,
        None,
        "The directory, by staff id (filter by team, status)"
    ),
    r!(
        "GET",
        "/api/v1/staff/people/{staff}",
        "kefu.staff.v1.StaffService/GetPerson",
        Body::None,
        [("staff", "staff_id")],
        None,
        None,
        "A person with their teams"
    ),
    r!(
        "PUT",
        "/api/v1/staff/people/{staff}",
        "kefu.staff.v1.StaffService/UpdatePerson",
        Body::All,
        [("staff", "person.staff_id")],
        Some("etag"),
        None,
        "Replace a person's record (display name, position, level, status, manager, skills, languages); If-Match required"
    ),
    r!(
        "POST",
        "/api/v1/staff/teams",
        "kefu.staff.v1.StaffService/CreateTeam",
        Body::All,
        [],
        None,
        None,
        "Add a team, queue or expert group"
    ),
    r!(
        "GET",
        "/api/v1/staff/teams",
        "kefu.staff.v1.StaffService/ListTeams",
        Body::None,
        [],
        None,
        None,
        "Teams, queues and expert groups with their members"
    ),
    r!(
        "GET",
        "/api/v1/staff/teams/{code}",
        "kefu.staff.v1.StaffService/GetTeam",
        Body::None,
        [("code", "code")],
        None,
        None,
        "A team with its members"
    ),
    r!(
        "PUT",
        "/api/v1/staff/teams/{code}/members",
        "kefu.staff.v1.StaffService/SetMembership",
        Body::All,
        [("code", "team")],
        None,
        None,
        "Add someone to a team (or as its lead), or take them out"
    ),
    r!(
        "POST",
        "/api/v1/staff/resolve",
        "kefu.staff.v1.StaffService/Resolve",
        Body::All,
        [],
        None,
        None,
        "What staff ids and team codes refer to"
    ),
];
