//! The entry point of the `sim_requests` fuzz target (`fuzz/`): raw HTTP/1.1 requests, as a client would send
//! them to the simulator's port after TLS, through hyper and the simulator's SOAP (`/sdk`) and REST
//! (`/api`, `/rest`) handlers. Built only with `--cfg fuzzing` (as `cargo fuzz` does) and for tests, which
//! replay the target's seeds and regressions.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::datastore::Datastores;
use crate::inventory::Flavour;
use crate::rest;
use crate::sessions::{session_from_cookie, Api};
use crate::sim::Sim;
use crate::soap::{self, Fault};
use crate::version::Release;
use crate::vim;

/// The one user's password: no answer may repeat it.
const PASSWORD: &str = "Zq9SimPassword";

/// How long a call may take: long enough for every call that does not wait, short enough that
/// `WaitForUpdates` (which waits for changes up to a minute) does not stall the fuzzer.
const CALL_TIME: Duration = Duration::from_millis(1);

/// A vCenter with both REST generations, user `root`, two VMs (`on`, `off`), no datastores, no guests and no
/// VNC server: nothing a request does leaves the process.
fn vcenter() -> Sim {
    Sim::for_tests_as(Flavour::Vcenter, Release::V8_0, PASSWORD, Datastores::default(), 0)
}

/// `data` with every `from` replaced by `to`.
fn replace(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut rest = data;
    while !rest.is_empty() {
        if rest.starts_with(from) {
            out.extend_from_slice(to);
            rest = &rest[from.len()..];
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    out
}

/// The `sim_requests` target: the input is what a client sends on one connection, one request or several;
/// `$SOAP` and `$REST` in it stand for the ids of a live SOAP and REST session (so that a `Cookie:
/// vmware_soap_session="$SOAP"` or `vmware-api-session-id: $REST` header reaches the calls behind the login).
/// Answers must never contain the password.
pub fn sim_requests(data: &[u8]) {
    let sim = Arc::new(vcenter());
    let soap_session = sim.login("root", PASSWORD, Api::Soap).expect("the SOAP login");
    let rest_session = sim.login("root", PASSWORD, Api::Rest).expect("the REST login");
    let input = replace(&replace(data, b"$SOAP", soap_session.as_bytes()), b"$REST", rest_session.as_bytes());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a runtime");
    let answers = runtime.block_on(async {
        let (mut client, server) = tokio::io::duplex(64 << 10);
        let service = service_fn(move |req| {
            let sim = sim.clone();
            async move { Ok::<_, Infallible>(route(req, &sim).await) }
        });
        let connection = http1::Builder::new().serve_connection(TokioIo::new(server), service);
        let exchange = async {
            // hyper stops reading at a request it cannot parse, and answers it: the rest is not for it.
            let _ = client.write_all(&input).await;
            let _ = client.shutdown().await;
            let mut answers = Vec::new();
            let _ = client.read_to_end(&mut answers).await;
            answers
        };
        let (_, answers) = tokio::join!(connection, exchange);
        answers
    });
    let answers = String::from_utf8_lossy(&answers);
    assert!(!answers.contains(PASSWORD), "an answer shows the password");
}

/// What the simulator's HTTPS routing does for the API paths.
async fn route(req: Request<Incoming>, sim: &Arc<Sim>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    if path == "/sdk" {
        return soap_call(req, sim).await;
    }
    match rest::face_of(sim, &path) {
        Some(face) => rest::serve(req, face, sim).await,
        None => reply(404, "not an API path".into()),
    }
}

/// A SOAP call as the HTTPS port takes it: the session cookie, the SOAPAction (the API version) and the body.
async fn soap_call(req: Request<Incoming>, sim: &Arc<Sim>) -> Response<Full<Bytes>> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let cookie = header(header::COOKIE.as_str());
    let action = header("soapaction");
    let body = match Limited::new(req.into_body(), 1 << 20).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return reply(400, format!("cannot read the request body: {e}")),
    };
    let call = match soap::Request::parse(&body) {
        Ok(c) => c,
        Err(e) => return reply(500, Fault::invalid_request(&e).to_xml()),
    };
    let session = cookie.as_deref().and_then(session_from_cookie);
    match tokio::time::timeout(CALL_TIME, vim::call(sim, &call, session, action.as_deref())).await {
        Ok(answer) => reply(answer.status, answer.body),
        Err(_) => reply(504, "the call waits".into()),
    }
}

fn reply(status: u16, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    r
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Every seed (`fuzz/corpus/sim_requests/`) and every input that once failed
    /// (`fuzz/regressions/sim_requests/`) passes through the target.
    #[test]
    fn seeds_and_regressions_replay() {
        let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
        let mut seeds = 0;
        for kind in ["corpus", "regressions"] {
            let Ok(entries) = std::fs::read_dir(fuzz.join(kind).join("sim_requests")) else { continue };
            for entry in entries {
                super::sim_requests(&std::fs::read(entry.unwrap().path()).unwrap());
                seeds += usize::from(kind == "corpus");
            }
        }
        assert!(seeds > 0, "fuzz/corpus/sim_requests has no seeds");
    }
}
