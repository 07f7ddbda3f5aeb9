//! Checks of a service's access table: it names exactly the methods of the
//! service's descriptor, and a live server admits exactly the roles it says.
use kefu_kit::{
    access::Access,
    auth::{Role, TokenSigner},
};
use tonic::Code;

use crate::raw;

/// Fails unless `access` has one row per method of its service's descriptor
/// and no row for a method the service does not have.
pub fn assert_covers_descriptor(access: &Access) {
    let methods = raw::methods(access.service);
    assert!(!methods.is_empty(), "{} is not in kefu's descriptor set", access.service);
    let missing: Vec<&str> = methods.iter().map(|m| m.name.as_str()).filter(|m| access.roles(m).is_none()).collect();
    let extra: Vec<&str> =
        access.rules.iter().map(|(m, _)| *m).filter(|r| !methods.iter().any(|m| m.name == *r)).collect();
    assert!(missing.is_empty(), "{}: RPCs missing from the access table: {missing:?}", access.service);
    assert!(extra.is_empty(), "{}: access rows for RPCs the service does not have: {extra:?}", access.service);
    let mut seen = std::collections::HashSet::new();
    for (m, roles) in access.rules {
        assert!(seen.insert(*m), "{}: {m} is listed twice", access.service);
        assert!(!roles.is_empty(), "{}: {m} admits no role", access.service);
    }
}

/// One cell of the live role matrix that disagrees with the table.
#[derive(Debug)]
pub struct Mismatch {
    pub method: String,
    pub role: Role,
    pub allowed: bool,
    pub got: Code,
}

/// Calls every RPC of `access.service` at `addr` with every role, and returns
/// the cells where the server's answer disagrees with the table: an admitted
/// role must not get PERMISSION_DENIED (nor UNAUTHENTICATED), a refused one
/// must get PERMISSION_DENIED.
pub async fn role_matrix(addr: &str, signer: &TokenSigner, access: &Access) -> Vec<Mismatch> {
    let channel = kefu_kit::client::channel(addr).expect("channel");
    let mut out = Vec::new();
    for m in raw::methods(access.service) {
        let allowed_roles = access.roles(&m.name).unwrap_or(&[]);
        for role in Role::ALL {
            let token =
                signer.mint(&format!("matrix-{role}"), &[role], std::time::Duration::from_secs(300)).expect("mint");
            let got = raw::call_empty(channel.clone(), access.service, &m, &token).await;
            let allowed = allowed_roles.contains(&role);
            let agrees = if allowed {
                !matches!(got, Code::PermissionDenied | Code::Unauthenticated)
            } else {
                got == Code::PermissionDenied
            };
            if !agrees {
                out.push(Mismatch { method: m.name.clone(), role, allowed, got });
            }
        }
    }
    out
}
