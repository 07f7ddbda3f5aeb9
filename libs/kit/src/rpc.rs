//! The few lines every gRPC handler starts and ends with: the verified
//! caller, the caller's own token (to call peers on their behalf) and the
//! message; and the kit's result as the gRPC answer.
use tonic::{Request, Response, Status};

use crate::auth::{Principal, principal};

/// A request taken apart.
pub struct Call<T> {
    /// The caller the auth layer verified.
    pub p: Principal,
    /// The caller's bearer token, passed on to the services this one calls.
    pub token: Option<String>,
    /// The request message.
    pub r: T,
}

/// Takes a request apart.
pub fn call<T>(req: Request<T>) -> Result<Call<T>, Status> {
    let p = principal(&req)?;
    let token = req
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    Ok(Call { p, token, r: req.into_inner() })
}

/// A handler's answer.
pub type Res<T> = Result<Response<T>, Status>;

/// A resource function's result as the gRPC answer (one conversion of errors).
pub fn answer<T>(r: crate::Result<T>) -> Res<T> {
    r.map(Response::new).map_err(Status::from)
}
