//! The staff directory as the services that accept staff references see
//! it: whether an assignee, an owner or an escalation target is an active
//! person or a team of the directory, and the names people read. Calls the
//! staff service's `Resolve` with the caller's own token.
use std::collections::{BTreeSet, HashMap};

use kefu_proto::staff::v1::{self as spb, RefKind, staff_service_client::StaffServiceClient};
use tonic::transport::Channel;

use crate::{
    Error,
    client::{CallContext, PEER_DEADLINE, within},
    error::Violations,
};

/// What a field accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// An active person (an assignee, an owner, a trainer).
    Person,
    /// A person of the directory, active or not (someone a complaint is
    /// about, or a certificate was earned by, may have left since).
    KnownPerson,
    /// An active person or a team, queue or expert group (an escalation
    /// target).
    PersonOrTeam,
}

/// A field's reference to check: (field, value, what it accepts).
pub type Reference<'a> = (&'a str, &'a str, Accept);

/// A handle on the staff service.
#[derive(Clone)]
pub struct Directory {
    channel: Channel,
}

impl Directory {
    pub fn new(addr: &str) -> anyhow::Result<Self> {
        Ok(Self { channel: crate::client::channel(addr)? })
    }

    async fn resolve(&self, token: Option<&str>, refs: Vec<String>) -> Result<Vec<spb::Resolved>, Error> {
        let mut out = Vec::with_capacity(refs.len());
        for chunk in refs.chunks(200) {
            let mut c = StaffServiceClient::with_interceptor(self.channel.clone(), CallContext::new(token)?);
            let r = within(PEER_DEADLINE, c.resolve(spb::ResolveRequest { refs: chunk.to_vec() }))
                .await
                .map_err(|s| Error::from_peer("staff", &s))?;
            out.extend(r.resolved);
        }
        Ok(out)
    }

    /// Checks each non-empty reference against the directory: every one
    /// that is unknown, has left or is of the wrong kind is named in one
    /// INVALID_ARGUMENT. The staff service being down is UNAVAILABLE.
    pub async fn check(&self, token: Option<&str>, refs: &[Reference<'_>]) -> Result<(), Error> {
        let wanted: Vec<&Reference<'_>> = refs.iter().filter(|(_, v, _)| !v.trim().is_empty()).collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let resolved = self.resolve(token, wanted.iter().map(|(_, v, _)| v.trim().to_owned()).collect()).await?;
        if resolved.len() != wanted.len() {
            return Err(Error::Internal(anyhow::anyhow!(
                "the staff directory answered {} of {} references",
                resolved.len(),
                wanted.len()
            )));
        }
        let mut v = Violations::new();
        for ((field, value, accept), r) in wanted.iter().zip(&resolved) {
            let kind = RefKind::try_from(r.kind).unwrap_or(RefKind::Unspecified);
            match (kind, accept) {
                (RefKind::Person, _) if r.active => {}
                (RefKind::Person, Accept::KnownPerson) => {}
                (RefKind::Person, _) => {
                    v.add(*field, format!("{value}（{}）is not an active member of staff", r.display_name))
                }
                (RefKind::Team, Accept::PersonOrTeam) => {}
                (RefKind::Team, Accept::Person | Accept::KnownPerson) => {
                    v.add(*field, format!("{value} is a team or queue; a person is needed here"))
                }
                _ => v.add(
                    *field,
                    match accept {
                        Accept::Person | Accept::KnownPerson => {
                            format!("{value} is not a person of the staff directory")
                        }
                        Accept::PersonOrTeam => {
                            format!("{value} is neither a person nor a team or queue of the staff directory")
                        }
                    },
                ),
            }
        }
        v.finish()
    }

    /// Display names of the people and teams among `ids` (unknown ones are
    /// left out).
    pub async fn names(&self, token: Option<&str>, ids: &[String]) -> Result<HashMap<String, String>, Error> {
        let mut wanted: Vec<String> = ids.iter().filter(|s| !s.is_empty()).cloned().collect();
        wanted.sort();
        wanted.dedup();
        if wanted.is_empty() {
            return Ok(HashMap::new());
        }
        let resolved = self.resolve(token, wanted).await?;
        Ok(resolved
            .into_iter()
            .filter(|r| r.kind != RefKind::Unknown as i32 && !r.display_name.is_empty())
            .map(|r| (r.reference, r.display_name))
            .collect())
    }

    /// Whose live events a person follows: their own, and their teams'
    /// (each team's members, and the team's code as a queue). Someone the
    /// directory does not know follows their own only.
    pub async fn scope_of(
        &self,
        token: Option<&str>,
        staff: &str,
    ) -> Result<(BTreeSet<String>, BTreeSet<String>), Error> {
        let mut people = BTreeSet::from([staff.to_owned()]);
        let mut queues = BTreeSet::new();
        let mut c = StaffServiceClient::with_interceptor(self.channel.clone(), CallContext::new(token)?);
        let person =
            match within(PEER_DEADLINE, c.get_person(spb::GetPersonRequest { staff_id: staff.to_owned() })).await {
                Ok(p) => p,
                Err(s) if matches!(s.code(), tonic::Code::NotFound | tonic::Code::InvalidArgument) => {
                    return Ok((people, queues));
                }
                Err(s) => return Err(Error::from_peer("staff", &s)),
            };
        for m in person.teams.iter().take(50) {
            queues.insert(m.team.clone());
            let team = within(PEER_DEADLINE, c.get_team(spb::GetTeamRequest { code: m.team.clone() }))
                .await
                .map_err(|s| Error::from_peer("staff", &s))?;
            people.extend(team.members.into_iter().map(|x| x.staff_id));
        }
        Ok((people, queues))
    }
}
