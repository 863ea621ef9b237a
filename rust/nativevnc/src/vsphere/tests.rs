//! `acquire_ticket` against a scripted HTTPS SOAP responder on loopback.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_TYPE, COOKIE, HOST, SET_COOKIE, USER_AGENT};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::soap::tests::{name_objects, response, ESXI_SERVICE_CONTENT};
use super::xml::Element;
use super::*;
use crate::tls::{testing, Thumbprint, Verification};

const PASSWORD: &str = "pa<ss>&\"word";
const COOKIE_VALUE: &str = "\"52c0ffee-0000-4000-8000-000000000001\"";
const TICKET: &str = "52a9-e7f0-secret-ticket";

/// What the responder saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    this: String,
    cookie: Option<String>,
}

#[derive(Default)]
struct Log {
    requests: Mutex<Vec<Seen>>,
    connections: Mutex<usize>,
}

impl Log {
    fn methods(&self) -> Vec<String> {
        self.requests.lock().unwrap().iter().map(|seen| seen.method.clone()).collect()
    }
}

/// What the responder does beyond answering every call correctly.
#[derive(Default, Clone)]
struct Script {
    /// Answer this method with `Connection: close`.
    close_after: Option<&'static str>,
}

struct Responder {
    port: u16,
    sha256: Thumbprint,
    log: Arc<Log>,
}

impl Responder {
    async fn start(script: Script) -> Responder {
        let cert = testing::self_signed();
        let sha256 = Thumbprint::sha256(&cert.der);
        let acceptor = TlsAcceptor::from(testing::server_config(&cert, &[b"http/1.1"]));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Log::default());
        let server_log = log.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                *server_log.connections.lock().unwrap() += 1;
                let (acceptor, log, script) = (acceptor.clone(), server_log.clone(), script.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let service = service_fn(move |request| answer(request, log.clone(), script.clone()));
                    let _ =
                        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), service).await;
                });
            }
        });
        Responder { port, sha256, log }
    }

    fn endpoint(&self, password: &str) -> Endpoint {
        let pinned = Verification::Pinned(vec![self.sha256.clone()]);
        Endpoint::new("127.0.0.1", self.port, "root", password, pinned)
    }
}

fn fault(kind: &str, message: &str) -> (u16, String) {
    let body = format!(
        r#"<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>{message}</faultstring><detail>
<{kind}Fault xmlns="urn:vim25" xsi:type="{kind}"></{kind}Fault></detail></soapenv:Fault>"#
    );
    (500, body)
}

async fn answer(
    request: Request<Incoming>,
    log: Arc<Log>,
    script: Script,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let headers = request.headers().clone();
    assert_eq!((request.method().as_str(), request.uri().path()), ("POST", "/sdk"));
    assert_eq!(headers[CONTENT_TYPE], r#"text/xml; charset="utf-8""#);
    assert_eq!(headers["soapaction"], "urn:vim25/8.0.2.0");
    assert!(headers[HOST].to_str().unwrap().starts_with("127.0.0.1:"));
    assert!(headers[USER_AGENT].to_str().unwrap().starts_with("nativevnc/"));
    let cookie = headers.get(COOKIE).map(|value| value.to_str().unwrap().to_owned());
    let body = request.into_body().collect().await.unwrap().to_bytes();
    let envelope = Element::parse(std::str::from_utf8(&body).unwrap()).unwrap();
    let call = envelope.child("Body").and_then(Element::first_child).unwrap().clone();
    let this = call.child_text("_this").unwrap_or_default().to_owned();
    let method = call.name().to_owned();
    log.requests.lock().unwrap().push(Seen { method: method.clone(), this: this.clone(), cookie: cookie.clone() });

    let logged_in = cookie.as_deref() == Some(&format!("vmware_soap_session={COOKIE_VALUE}"));
    let mut set_cookie = false;
    let (status, returnval) = match method.as_str() {
        "RetrieveServiceContent" => return Ok(reply(200, ESXI_SERVICE_CONTENT.to_owned(), false, false)),
        "Login" if call.child_text("password") == Some(PASSWORD) && call.child_text("userName") == Some("root") => {
            set_cookie = true;
            (200, "<returnval><key>52b0</key><userName>root</userName></returnval>".to_owned())
        }
        "Login" => fault("InvalidLogin", "Cannot complete login due to an incorrect user name or password."),
        _ if !logged_in => fault("NotAuthenticated", "The session is not authenticated."),
        "FindByInventoryPath" if call.child_text("inventoryPath") == Some("ha-datacenter/vm/web") => {
            (200, r#"<returnval type="VirtualMachine">7</returnval>"#.to_owned())
        }
        "FindByInventoryPath" | "DestroyView" | "Logout" => (200, String::new()),
        "CreateContainerView" => (200, r#"<returnval type="ContainerView">session[52]view</returnval>"#.to_owned()),
        "RetrievePropertiesEx" => {
            (200, format!("<returnval><token>1</token>{}</returnval>", name_objects(&[("1", "alpha"), ("2", "dup")])))
        }
        "ContinueRetrievePropertiesEx" => (
            200,
            format!("<returnval>{}</returnval>", name_objects(&[("7", "web server"), ("8", "dup"), ("9", "a%2fb")])),
        ),
        "AcquireTicket" if this == "7" || this == "9" => (
            200,
            format!(
                r#"<returnval xsi:type="VirtualMachineTicket"><ticket>{TICKET}</ticket><cfgFile>[ds1] web/web.vmx</cfgFile>
<host>esx1.example.com</host><port>443</port><sslThumbprint>5A:2B:9C:10:44:E7:1F:3D:8A:6B:0C:91:2E:7F:55:AA:01:02:03:04</sslThumbprint>
<url>wss://esx1.example.com:443/ticket/{TICKET}</url></returnval>"#
            ),
        ),
        "AcquireTicket" => fault(
            "ManagedObjectNotFound",
            &format!(
                "The object 'vim.VirtualMachine:{this}' has already been deleted or has not been completely created"
            ),
        ),
        other => panic!("unexpected call {other}"),
    };
    let close = script.close_after == Some(method.as_str());
    let body = match status {
        200 => format!(r#"<{method}Response xmlns="urn:vim25">{returnval}</{method}Response>"#),
        _ => returnval,
    };
    Ok(reply(status, body, set_cookie, close))
}

fn reply(status: u16, body: String, set_cookie: bool, close: bool) -> Response<Full<Bytes>> {
    let mut builder = Response::builder().status(status).header(CONTENT_TYPE, "text/xml; charset=utf-8");
    if set_cookie {
        builder = builder.header(SET_COOKIE, format!("vmware_soap_session={COOKIE_VALUE}; Path=/; HttpOnly; Secure;"));
    }
    if close {
        builder = builder.header(CONNECTION, "close");
    }
    builder.body(Full::new(Bytes::from(response(&body)))).unwrap()
}

const TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn acquires_a_ticket_by_name_on_one_connection() {
    let responder = Responder::start(Script::default()).await;
    let ticket =
        acquire_ticket(&responder.endpoint(PASSWORD), &VmSelector::Name("web server".into()), TIMEOUT).await.unwrap();
    assert_eq!(ticket.ticket, TICKET);
    assert_eq!(ticket.host.as_deref(), Some("esx1.example.com"));
    assert_eq!(ticket.cfg_file.as_deref(), Some("[ds1] web/web.vmx"));
    assert_eq!(ticket.wss_url("127.0.0.1"), format!("wss://esx1.example.com:443/ticket/{TICKET}"));
    assert_eq!(ticket.thumbprints().len(), 1);
    assert_eq!(
        responder.log.methods(),
        [
            "RetrieveServiceContent",
            "Login",
            "CreateContainerView",
            "RetrievePropertiesEx",
            "ContinueRetrievePropertiesEx",
            "DestroyView",
            "AcquireTicket",
            "Logout"
        ]
    );
    let requests = responder.log.requests.lock().unwrap().clone();
    let expected_cookie = format!("vmware_soap_session={COOKIE_VALUE}");
    for seen in &requests[..2] {
        assert_eq!(seen.cookie, None, "{seen:?}");
    }
    for seen in &requests[2..] {
        assert_eq!(seen.cookie.as_deref(), Some(expected_cookie.as_str()), "{seen:?}");
    }
    let this: Vec<&str> = requests.iter().map(|seen| seen.this.as_str()).collect();
    assert_eq!(
        this,
        [
            "ServiceInstance",
            "ha-sessionmgr",
            "ViewManager",
            "ha-property-collector",
            "ha-property-collector",
            "session[52]view",
            "7",
            "ha-sessionmgr"
        ]
    );
    assert_eq!(*responder.log.connections.lock().unwrap(), 1);
}

#[tokio::test]
async fn finds_by_path_and_escaped_name_and_reconnects_after_close() {
    let responder = Responder::start(Script { close_after: Some("Login") }).await;
    let endpoint = responder.endpoint(PASSWORD);
    let ticket =
        acquire_ticket(&endpoint, &VmSelector::InventoryPath("ha-datacenter/vm/web".into()), TIMEOUT).await.unwrap();
    assert_eq!(ticket.ticket, TICKET);
    assert_eq!(
        responder.log.methods(),
        ["RetrieveServiceContent", "Login", "FindByInventoryPath", "AcquireTicket", "Logout"]
    );
    assert_eq!(*responder.log.connections.lock().unwrap(), 2);

    acquire_ticket(&endpoint, &VmSelector::Name("a/b".into()), TIMEOUT).await.unwrap();
}

#[tokio::test]
async fn wrong_password_is_final_and_secret() {
    let responder = Responder::start(Script::default()).await;
    let e = acquire_ticket(&responder.endpoint("hunter2"), &VmSelector::MoId("7".into()), TIMEOUT).await.unwrap_err();
    assert_eq!(e, TicketError::InvalidLogin);
    assert!(!e.retryable());
    assert_eq!(responder.log.methods(), ["RetrieveServiceContent", "Login"]);
    let error = Error::from(e);
    assert_eq!(error.kind(), ErrorKind::Auth);
    assert_eq!(error.message(), "vSphere login failed: incorrect user name or password");
}

#[tokio::test]
async fn lookup_failures_still_log_out() {
    let responder = Responder::start(Script::default()).await;
    let endpoint = responder.endpoint(PASSWORD);
    let e = acquire_ticket(&endpoint, &VmSelector::InventoryPath("web".into()), TIMEOUT).await.unwrap_err();
    assert_eq!(
        e,
        TicketError::VmNotFound(r#"inventory path "web" (on ESXi, paths look like "ha-datacenter/vm/NAME")"#.into())
    );
    assert!(e.retryable());
    let e = acquire_ticket(&endpoint, &VmSelector::Name("dup".into()), TIMEOUT).await.unwrap_err();
    assert_eq!(e, TicketError::Ambiguous { selector: r#"name "dup""#.into(), count: 2 });
    assert_eq!(e.to_string(), r#"2 virtual machines match name "dup""#);
    assert!(!e.retryable());
    let e = acquire_ticket(&endpoint, &VmSelector::Name("nobody".into()), TIMEOUT).await.unwrap_err();
    assert_eq!(e, TicketError::VmNotFound(r#"name "nobody""#.into()));
    let e = acquire_ticket(&endpoint, &VmSelector::MoId("vm-5".into()), TIMEOUT).await.unwrap_err();
    assert!(matches!(&e, TicketError::NotCreated(message) if message.contains("not been completely created")), "{e}");
    assert!(e.retryable());
    let methods = responder.log.methods();
    assert_eq!(methods.iter().filter(|method| *method == "Login").count(), 4);
    assert_eq!(methods.iter().filter(|method| *method == "Logout").count(), 4);
    assert_eq!(methods.iter().filter(|method| *method == "DestroyView").count(), 2);
}

#[tokio::test]
async fn pin_mismatch_is_a_tls_error() {
    let responder = Responder::start(Script::default()).await;
    let mut endpoint = responder.endpoint(PASSWORD);
    let wrong = Thumbprint::sha256(b"another certificate");
    endpoint.tls = Verification::Pinned(vec![wrong.clone()]);
    let e = acquire_ticket(&endpoint, &VmSelector::MoId("7".into()), TIMEOUT).await.unwrap_err();
    let TicketError::Tls(inner) = &e else { panic!("not a TLS error: {e:?}") };
    assert!(inner.message().contains(&format!("expected {wrong}")), "{inner}");
    assert!(inner.message().contains(&responder.sha256.to_string()), "{inner}");
    assert!(!e.retryable(), "a refused certificate stays refused");
    let error = Error::from(e);
    assert_eq!(error.kind(), ErrorKind::Setup);
    assert!(error.message().starts_with("vSphere: TLS handshake with 127.0.0.1:"), "{error}");
    assert!(responder.log.methods().is_empty());
}

#[tokio::test]
async fn silent_server_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    let endpoint = Endpoint::new("127.0.0.1", port, "root", PASSWORD, Verification::Insecure);
    let timeout = Duration::from_millis(200);
    let e = acquire_ticket(&endpoint, &VmSelector::MoId("7".into()), timeout).await.unwrap_err();
    assert_eq!(e, TicketError::Timeout(timeout));
    assert!(e.retryable());
    let error = Error::from(e);
    assert_eq!((error.kind(), error.message()), (ErrorKind::Timeout, "vSphere: no ticket within 200ms"));
    hold.abort();
}

#[tokio::test]
async fn refused_connection_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let endpoint = Endpoint::new("127.0.0.1", port, "root", PASSWORD, Verification::Insecure);
    let e = acquire_ticket(&endpoint, &VmSelector::MoId("7".into()), TIMEOUT).await.unwrap_err();
    assert!(
        matches!(&e, TicketError::Connect(inner) if inner.message().starts_with("connecting to 127.0.0.1:")),
        "{e}"
    );
    assert!(e.retryable());
}

#[test]
fn server_text_never_carries_the_password() {
    let echoed = TicketError::Fault {
        code: "ServerFaultCode".into(),
        fault: "InvalidRequest".into(),
        message: "cannot parse <password>hunter2</password>".into(),
    };
    let redacted = echoed.redact("hunter2");
    assert_eq!(
        redacted.to_string(),
        "SOAP fault InvalidRequest (ServerFaultCode): cannot parse <password><hidden></password>"
    );
    let http = TicketError::Http { status: 400, message: "hunter2".into() }.redact("hunter2");
    assert_eq!(http, TicketError::Http { status: 400, message: "<hidden>".into() });
    assert_eq!(TicketError::InvalidLogin.redact(""), TicketError::InvalidLogin);
}

#[test]
fn error_conversion() {
    use ErrorKind::{Auth, Connect, Setup};
    let cases = [
        (
            TicketError::PoweredOff("off".into()),
            Connect,
            "vSphere: the virtual machine is not in a state that allows a console ticket (is it powered on?): off",
        ),
        (TicketError::Http { status: 503, message: "busy".into() }, Connect, "vSphere: HTTP status 503: busy"),
        (TicketError::Malformed("x".into()), Setup, "vSphere: unexpected response: x"),
        (
            TicketError::Fault { code: "soapenv:VersionMismatch".into(), fault: String::new(), message: "no".into() },
            Connect,
            "vSphere: SOAP fault soapenv:VersionMismatch: no",
        ),
        (TicketError::NotCreated("gone".into()), Connect, "vSphere: the virtual machine is not available: gone"),
        (
            TicketError::Connect(Error::connect("connecting to a:443: refused")),
            Connect,
            "vSphere: connecting to a:443: refused",
        ),
        (
            TicketError::Tls(Error::connect("TLS handshake with a:443 failed: reset")),
            Connect,
            "vSphere: TLS handshake with a:443 failed: reset",
        ),
        (
            TicketError::Tls(Error::usage("CA file ca.pem contains no PEM certificate")),
            Setup,
            "vSphere: CA file ca.pem contains no PEM certificate",
        ),
        (
            TicketError::Rest { status: 503, error_type: "SERVICE_UNAVAILABLE".into(), message: "busy".into() },
            Connect,
            "vSphere: REST API error SERVICE_UNAVAILABLE (HTTP 503): busy",
        ),
        (TicketError::Unsupported("no REST API".into()), Setup, "vSphere: no REST API"),
        (TicketError::InvalidLogin, Auth, "vSphere login failed: incorrect user name or password"),
    ];
    for (e, kind, message) in cases {
        assert_eq!(e.retryable(), kind == Connect, "{e:?}");
        let error = Error::from(e);
        assert_eq!((error.kind(), error.message()), (kind, message));
    }
}

#[test]
fn debug_output_hides_secrets() {
    let endpoint = Endpoint::new("esx", 443, "root", "hunter2", Verification::Insecure);
    let ticket = Ticket {
        ticket: TICKET.into(),
        host: None,
        port: None,
        ssl_thumbprint: None,
        cert_thumbprints: Vec::new(),
        url: Some(format!("wss://esx/ticket/{TICKET}")),
        cfg_file: None,
    };
    let debug = format!("{endpoint:?} {ticket:?}");
    assert!(!debug.contains("hunter2") && !debug.contains("secret"), "{debug}");
}
