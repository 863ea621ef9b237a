//! vCenter's REST (Automation) API, the part a console client uses: sessions, VMs by name and console tickets.
//! Two generations: `/api/…` (vSphere 7.0 U2 on) answers bare values and errors `{"error_type": "NOT_FOUND",
//! "messages": [...]}`; the legacy `/rest/…` wraps values in `{"value": …}` and writes errors as `{"type":
//! "com.vmware.vapi.std.errors.not_found", "value": {"messages": [...]}}`. Only the vCenter flavour serves it: a
//! standalone host has no Automation API.
//!
//! REST sessions live next to the SOAP ones (same user; the token, sent back in `vmware-api-session-id`, is the
//! session id; counted as `rest_logins`, `rest_failed_logins`, `rest_logouts`), and a console ticket is a webmks
//! ticket: one-shot, `--ticket-ttl`, dead once its session logs out, counted as AcquireTicket's.

use std::time::SystemTime;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::{json, Value};

use crate::acquire::{self, NotReady, MKS_NOT_AVAILABLE};
use crate::folder::percent_decode;
use crate::inventory::Flavour;
use crate::sessions::{basic_credentials, Api, Session};
use crate::sim::{lock, Sim};
use crate::tickets::{self, short};
use crate::values::iso8601;
use crate::vms::Vm;

/// The largest request body read (a ticket spec is a few bytes).
const MAX_BODY: usize = 64 << 10;
/// The header carrying the session token.
pub const SESSION_HEADER: &str = "vmware-api-session-id";

type Reply = Response<Full<Bytes>>;

/// Which generations of the API are served (`--rest-generation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Generations {
    /// Only /api/… (the legacy paths answer 404).
    Api,
    /// Only the legacy /rest/…, as vCenter 7.0 before U2, where /api/… answered 404.
    Rest,
    /// Both, as vCenter 7.0 U2 to 8.0.
    Both,
}

/// One generation's face.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    /// `/api/…`: bare values, `error_type` errors, 201 for creations, 204 for deletions.
    Api,
    /// `/rest/…`: values in `{"value": …}`, `type`/`value` errors, always 200.
    Rest,
}

impl Face {
    fn prefix(self) -> &'static str {
        match self {
            Face::Api => "/api",
            Face::Rest => "/rest",
        }
    }

    fn session_path(self) -> &'static str {
        match self {
            Face::Api => "/session",
            Face::Rest => "/com/vmware/cis/session",
        }
    }
}

/// The face that serves `path` here, if any.
pub fn face_of(sim: &Sim, path: &str) -> Option<Face> {
    if sim.inventory.flavour != Flavour::Vcenter {
        return None;
    }
    let under = |f: Face| path.strip_prefix(f.prefix()).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    let face = [Face::Api, Face::Rest].into_iter().find(|&f| under(f))?;
    let served = matches!(
        (sim.settings.rest_generations, face),
        (Generations::Both, _) | (Generations::Api, Face::Api) | (Generations::Rest, Face::Rest)
    );
    served.then_some(face)
}

/// The API's errors, each with its status, vAPI error type and message.
#[derive(Debug, PartialEq, Eq)]
enum Error {
    /// No, wrong or logged-out credentials.
    Unauthenticated,
    NoSuchVm(String),
    PoweredOff(String),
    MksStarting(String),
    /// `--refuse-tickets` / `/_sim/refuse-tickets`.
    Refused(String),
    InvalidArgument(String),
    NoSuchPath,
    /// A known path with another method; the ones it takes.
    WrongMethod(Vec<Method>),
}

impl Error {
    fn status(&self) -> StatusCode {
        match self {
            Error::Unauthenticated => StatusCode::UNAUTHORIZED,
            Error::NoSuchVm(_) | Error::NoSuchPath => StatusCode::NOT_FOUND,
            Error::PoweredOff(_) | Error::InvalidArgument(_) => StatusCode::BAD_REQUEST,
            Error::MksStarting(_) | Error::Refused(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::WrongMethod(_) => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    fn error_type(&self) -> &'static str {
        match self {
            Error::Unauthenticated => "UNAUTHENTICATED",
            Error::NoSuchVm(_) | Error::NoSuchPath => "NOT_FOUND",
            Error::PoweredOff(_) => "NOT_ALLOWED_IN_CURRENT_STATE",
            Error::MksStarting(_) | Error::Refused(_) => "SERVICE_UNAVAILABLE",
            Error::InvalidArgument(_) => "INVALID_ARGUMENT",
            Error::WrongMethod(_) => "OPERATION_NOT_FOUND",
        }
    }

    /// The message: its id, default text and arguments.
    fn message(&self) -> (&'static str, String, Vec<String>) {
        let vm_arg = |vm: &String| vec![vm.clone()];
        match self {
            Error::Unauthenticated => {
                ("com.vmware.vapi.endpoint.method.authentication.required", "Authentication required.".into(), vec![])
            }
            Error::NoSuchVm(vm) => (
                "com.vmware.api.vcenter.vm.not_found",
                format!("Virtual machine with identifier '{vm}' does not exist."),
                vm_arg(vm),
            ),
            Error::PoweredOff(vm) => (
                "com.vmware.api.vcenter.vm.console.tickets.powered_off",
                format!("The WEBMKS ticket of virtual machine '{vm}' can be acquired only when the VM is turned on."),
                vm_arg(vm),
            ),
            Error::MksStarting(vm) => (
                "com.vmware.api.vcenter.vm.console.tickets.mks_unavailable",
                format!("The console of virtual machine '{vm}' is not available yet: {MKS_NOT_AVAILABLE}."),
                vm_arg(vm),
            ),
            Error::Refused(vm) => (
                "com.vmware.api.vcenter.vm.console.tickets.unavailable",
                format!("The console of virtual machine '{vm}' is not available now (refused as asked)."),
                vm_arg(vm),
            ),
            Error::InvalidArgument(why) => ("com.vmware.vapi.std.errors.invalid_argument", why.clone(), vec![]),
            Error::NoSuchPath => ("com.vmware.vapi.rest.httpNotFound", "Not found.".into(), vec![]),
            Error::WrongMethod(allowed) => {
                let list: Vec<&str> = allowed.iter().map(Method::as_str).collect();
                let text = format!("This resource takes {}.", list.join(", "));
                ("com.vmware.vapi.rest.httpMethodNotAllowed", text, vec![])
            }
        }
    }

    /// The error body in the face's shape.
    fn body(&self, face: Face) -> Value {
        let (id, default_message, args) = self.message();
        let messages = json!([{ "args": args, "default_message": default_message, "id": id }]);
        match face {
            Face::Api => json!({ "error_type": self.error_type(), "messages": messages }),
            Face::Rest => json!({
                "type": format!("com.vmware.vapi.std.errors.{}", self.error_type().to_ascii_lowercase()),
                "value": { "messages": messages },
            }),
        }
    }
}

/// A successful operation's value (`None` for an empty answer) and whether it created something.
#[derive(Debug)]
struct Done {
    value: Option<Value>,
    created: bool,
}

impl Done {
    fn value(value: Value) -> Done {
        Done { value: Some(value), created: false }
    }

    fn created(value: Value) -> Done {
        Done { value: Some(value), created: true }
    }

    fn empty() -> Done {
        Done { value: None, created: false }
    }

    /// The status and body in the face's shape.
    fn answer(&self, face: Face) -> (StatusCode, Option<Value>) {
        match (face, &self.value) {
            (Face::Api, None) => (StatusCode::NO_CONTENT, None),
            (Face::Api, Some(v)) => (if self.created { StatusCode::CREATED } else { StatusCode::OK }, Some(v.clone())),
            (Face::Rest, value) => (StatusCode::OK, value.as_ref().map(|v| json!({ "value": v }))),
        }
    }
}

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
enum Operation {
    Login,
    Logout,
    /// The caller's session: user and times.
    SessionInfo,
    ListVms,
    /// A console ticket for the VM with this id.
    ConsoleTicket(String),
}

/// The operation of `method` on `path` (below the face's prefix).
fn operation(face: Face, method: &Method, path: &str, query: &str) -> Result<Operation, Error> {
    let offered = if path == face.session_path() {
        match face {
            Face::Api => {
                vec![
                    (Method::POST, Operation::Login),
                    (Method::DELETE, Operation::Logout),
                    (Method::GET, Operation::SessionInfo),
                ]
            }
            Face::Rest if query.split('&').any(|kv| kv == "~action=get") => {
                vec![(Method::POST, Operation::SessionInfo)]
            }
            Face::Rest => vec![(Method::POST, Operation::Login), (Method::DELETE, Operation::Logout)],
        }
    } else if path == "/vcenter/vm" {
        vec![(Method::GET, Operation::ListVms)]
    } else {
        let vm = path.strip_prefix("/vcenter/vm/").and_then(|p| p.strip_suffix("/console/tickets"));
        let vm = vm.filter(|vm| !vm.is_empty() && !vm.contains('/')).and_then(percent_decode);
        vec![(Method::POST, Operation::ConsoleTicket(vm.ok_or(Error::NoSuchPath)?))]
    };
    let allowed = offered.iter().map(|(m, _)| m.clone()).collect();
    offered.into_iter().find(|(m, _)| m == method).map(|(_, op)| op).ok_or(Error::WrongMethod(allowed))
}

/// A request, taken apart.
#[derive(Debug)]
struct Call<'a> {
    face: Face,
    method: Method,
    path: &'a str,
    query: &'a str,
    /// The `Authorization` header.
    authorization: Option<&'a str>,
    /// The `vmware-api-session-id` header.
    token: Option<&'a str>,
    body: &'a [u8],
}

/// Serves one request under `/api` or `/rest` (see [`face_of`]).
pub async fn serve(req: Request<Incoming>, face: Face, sim: &Sim) -> Reply {
    let (parts, body) = req.into_parts();
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return reply(face, Err(Error::InvalidArgument(format!("Cannot read the request body: {e}.")))),
    };
    let call = Call {
        face,
        method: parts.method.clone(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or_default(),
        authorization: header(header::AUTHORIZATION.as_str()),
        token: header(SESSION_HEADER),
        body: &body,
    };
    reply(face, handle(sim, &call))
}

/// The status and body of an outcome, in the face's shape.
fn outcome(face: Face, result: &Result<Done, Error>) -> (StatusCode, Option<Value>) {
    match result {
        Ok(done) => done.answer(face),
        Err(e) => (e.status(), Some(e.body(face))),
    }
}

fn reply(face: Face, result: Result<Done, Error>) -> Reply {
    let (status, body) = outcome(face, &result);
    let mut r = Response::new(Full::new(body.as_ref().map(|b| Bytes::from(b.to_string())).unwrap_or_default()));
    *r.status_mut() = status;
    let h = r.headers_mut();
    if body.is_some() {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    match result {
        Err(Error::Unauthenticated) => {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"VAPI endpoint\""));
        }
        Err(Error::WrongMethod(allowed)) => {
            let list: Vec<&str> = allowed.iter().map(Method::as_str).collect();
            if let Ok(v) = HeaderValue::from_str(&list.join(", ")) {
                h.insert(header::ALLOW, v);
            }
        }
        _ => {}
    }
    r
}

fn handle(sim: &Sim, call: &Call) -> Result<Done, Error> {
    let path = &call.path[call.face.prefix().len()..];
    match operation(call.face, &call.method, path, call.query)? {
        Operation::Login => {
            let (user, password) = call.authorization.and_then(basic_credentials).ok_or(Error::Unauthenticated)?;
            let token = sim.login(&user, &password, Api::Rest).ok_or(Error::Unauthenticated)?;
            Ok(if call.face == Face::Api { Done::created(json!(token)) } else { Done::value(json!(token)) })
        }
        Operation::Logout => {
            let (token, _) = session(sim, call)?;
            sim.logout(token);
            Ok(Done::empty())
        }
        Operation::SessionInfo => {
            let (_, s) = session(sim, call)?;
            Ok(Done::value(json!({
                "user": s.user,
                "created_time": iso8601(s.login_time),
                "last_accessed_time": iso8601(SystemTime::now()),
            })))
        }
        Operation::ListVms => {
            session(sim, call)?;
            let names = name_filter(call.face, call.query)?;
            let model = lock(&sim.model);
            let wanted = model.vms.vms.iter().filter(|vm| names.as_ref().map_or(true, |n| n.contains(&vm.name)));
            Ok(Done::value(wanted.map(summary).collect()))
        }
        Operation::ConsoleTicket(vm) => {
            let (token, _) = session(sim, call)?;
            console_ticket(sim, call, &vm, token)
        }
    }
}

/// The caller's live session: its token and the session.
fn session<'a>(sim: &Sim, call: &Call<'a>) -> Result<(&'a str, Session), Error> {
    let token = call.token.ok_or(Error::Unauthenticated)?;
    sim.session(token, Api::Rest).map(|s| (token, s)).ok_or(Error::Unauthenticated)
}

/// The VM names a listing asks for (`names=` on /api, `filter.names=` or `filter.names.N=` on /rest; form
/// encoded, repeatable); `None` for all VMs.
fn name_filter(face: Face, query: &str) -> Result<Option<Vec<String>>, Error> {
    let wanted = |key: &str| match face {
        Face::Api => key == "names",
        Face::Rest => {
            key == "filter.names"
                || key
                    .strip_prefix("filter.names.")
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        }
    };
    let mut names = Vec::new();
    for (key, value) in query.split('&').filter_map(|kv| kv.split_once('=')) {
        if wanted(key) {
            let name = percent_decode(&value.replace('+', " "))
                .ok_or_else(|| Error::InvalidArgument(format!("The query parameter {key} is not form encoded.")))?;
            names.push(name);
        }
    }
    Ok((!names.is_empty()).then_some(names))
}

/// A VM as the listing shows it.
fn summary(vm: &Vm) -> Value {
    json!({
        "vm": vm.moid,
        "name": vm.name,
        "power_state": if vm.powered_on { "POWERED_ON" } else { "POWERED_OFF" },
        "cpu_count": vm.settings.num_cpus,
        "memory_size_MiB": vm.settings.memory_mb,
    })
}

/// The ticket type of a create spec: `{"type": T}` on /api, `{"spec": {"type": T}}` on /rest.
fn ticket_type(face: Face, body: &[u8]) -> Result<String, Error> {
    let json: Value = serde_json::from_slice(body)
        .map_err(|e| Error::InvalidArgument(format!("The request body is not JSON: {e}.")))?;
    let (spec, field) = match face {
        Face::Api => (Some(&json), "'type'"),
        Face::Rest => (json.get("spec"), "'spec.type'"),
    };
    let ty = spec.and_then(|s| s.get("type")).and_then(Value::as_str);
    ty.map(str::to_string)
        .ok_or_else(|| Error::InvalidArgument(format!("The ticket spec has no string field {field}.")))
}

fn console_ticket(sim: &Sim, call: &Call, vm_id: &str, token: &str) -> Result<Done, Error> {
    let ty = ticket_type(call.face, call.body)?;
    if ty != "WEBMKS" {
        return Err(Error::InvalidArgument(format!("Only WEBMKS console tickets are simulated, not '{ty}'.")));
    }
    let vm = lock(&sim.model).vms.by_moid(vm_id).cloned().ok_or_else(|| Error::NoSuchVm(vm_id.to_string()))?;
    if sim.control.take_refusal() {
        log!("REST console ticket for {vm_id}: refused as asked (--refuse-tickets)");
        return Err(Error::Refused(vm_id.to_string()));
    }
    acquire::console_ready(sim, &vm).map_err(|e| match e {
        NotReady::PoweredOff => Error::PoweredOff(vm_id.to_string()),
        NotReady::MksStarting => Error::MksStarting(vm_id.to_string()),
    })?;
    let ticket = acquire::issue(sim, &vm, token);
    let host = Some(sim.ticket_host()).filter(|h| !h.is_empty()).unwrap_or_else(|| sim.local.ip().to_string());
    log!("REST console ticket for {vm_id} ({}): ticket {}", vm.name, short(&ticket));
    Ok(Done::created(json!({ "ticket": tickets::url(&host, sim.local.port(), &ticket) })))
}

#[cfg(test)]
mod tests;
