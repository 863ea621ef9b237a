//! Datastore files over HTTPS, as ESXi serves them: `/folder/PATH?dcPath=DATACENTER&dsName=DATASTORE` with GET
//! (download), PUT (upload; missing parent directories are made) and DELETE. libvirt uploads a VM's .vmx this
//! way on `virsh define` and downloads it for `virsh dumpxml`. Requests need a live SOAP session (the
//! `vmware_soap_session` cookie, which libvirt's curl handle sends) or HTTP basic authentication as the user;
//! paths never leave the datastore's directory.

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tokio::io::AsyncWriteExt;

use crate::sessions::{basic_credentials, session_from_cookie, Api};
use crate::sim::Sim;

type Reply = Response<Full<Bytes>>;

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Reply {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r
}

fn text(status: StatusCode, message: &str) -> Reply {
    let mut r = reply(status, format!("webmks-sim: {message}\n"));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

/// Decodes `%XX` escapes (anything else stays as it is).
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The decoded value of `name` in a query string.
fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| percent_decode(v)).flatten()
    })
}

/// Whether the request comes from a live session or authenticates as the user.
fn authorized(sim: &Sim, req: &Request<Incoming>) -> bool {
    let headers = req.headers();
    let cookie = headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(session_from_cookie);
    if cookie.is_some_and(|id| sim.session(id, Api::Soap).is_some()) {
        return true;
    }
    let basic = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(basic_credentials);
    basic.is_some_and(|(user, password)| sim.settings.is_user(&user, &password))
}

/// Serves one `/folder/…` request.
pub async fn serve(req: Request<Incoming>, sim: &Sim) -> Reply {
    if !authorized(sim, &req) {
        let mut r = text(StatusCode::UNAUTHORIZED, "log in first (SOAP session cookie or basic authentication)");
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"VMware HTTP server\""));
        return r;
    }
    let query = req.uri().query().unwrap_or_default();
    let datacenter = sim.inventory.well_known().datacenter;
    if query_param(query, "dcPath").as_deref() != Some(datacenter) {
        return text(StatusCode::NOT_FOUND, &format!("dcPath must be {datacenter}"));
    }
    let Some(ds) = query_param(query, "dsName").and_then(|n| sim.inventory.datastores.by_name(&n).cloned()) else {
        return text(StatusCode::NOT_FOUND, "no such datastore (dsName)");
    };
    let relative = req.uri().path().strip_prefix("/folder/").and_then(percent_decode).unwrap_or_default();
    let path = match ds.local(&relative) {
        Ok(p) => p,
        Err(e) => return text(StatusCode::BAD_REQUEST, &e),
    };
    match *req.method() {
        Method::GET => match tokio::fs::read(&path).await {
            Ok(data) => {
                let mut r = reply(StatusCode::OK, data);
                r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
                r
            }
            Err(_) => text(StatusCode::NOT_FOUND, &format!("[{}] {relative} not found", ds.name)),
        },
        Method::PUT => {
            let existed = path.is_file();
            match upload(req.into_body(), &path).await {
                Ok(size) => {
                    log!("datastore upload [{}] {relative}: {size} bytes", ds.name);
                    reply(if existed { StatusCode::OK } else { StatusCode::CREATED }, Bytes::new())
                }
                Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("[{}] {relative}: {e}", ds.name)),
            }
        }
        Method::DELETE => match tokio::fs::remove_file(&path).await {
            Ok(()) => {
                log!("datastore delete [{}] {relative}", ds.name);
                reply(StatusCode::NO_CONTENT, Bytes::new())
            }
            Err(e) => text(StatusCode::NOT_FOUND, &format!("[{}] {relative}: {e}", ds.name)),
        },
        _ => text(StatusCode::METHOD_NOT_ALLOWED, "/folder takes GET, PUT and DELETE"),
    }
}

/// Writes a request body to `path` (parents made as needed); returns its size.
async fn upload(mut body: Incoming, path: &std::path::Path) -> Result<u64, String> {
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent).await.map_err(|e| e.to_string())?;
    }
    let mut file = tokio::fs::File::create(path).await.map_err(|e| e.to_string())?;
    let mut size = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("reading the upload: {e}"))?;
        if let Ok(data) = frame.into_data() {
            file.write_all(&data).await.map_err(|e| e.to_string())?;
            size += data.len() as u64;
        }
    }
    file.flush().await.map_err(|e| e.to_string())?;
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding() {
        assert_eq!(percent_decode("openQA%2Fa%20b.vmx").as_deref(), Some("openQA/a b.vmx"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(query_param("dcPath=ha-datacenter&dsName=data%20store", "dsName").as_deref(), Some("data store"));
        assert_eq!(query_param("dcPath=x", "dsName"), None);
    }
}
