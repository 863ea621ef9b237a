//! The built `webmks-sim` as a vCenter's REST API, over real HTTPS: sessions with basic authentication, VMs by
//! name, console tickets whose wss URL opens the webmks console, their refusals, and the flags that choose
//! which APIs exist (`--no-soap`, `--rest-generation`, the ESXi flavour).

mod common;

use common::{connect, https, refused_status, scripted_vnc_server, start_sim, Sim, TIMEOUT};
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// `root:pw`.
const ROOT_PW: &str = "Authorization: Basic cm9vdDpwdw==\r\n";

/// One generation's paths and shapes.
struct Generation {
    api: bool,
    session: &'static str,
    vms_named: fn(&str) -> String,
    tickets: fn(&str) -> String,
    webmks: &'static str,
}

const API: Generation = Generation {
    api: true,
    session: "/api/session",
    vms_named: |name| format!("/api/vcenter/vm?names={name}"),
    tickets: |vm| format!("/api/vcenter/vm/{vm}/console/tickets"),
    webmks: r#"{"type":"WEBMKS"}"#,
};

const LEGACY: Generation = Generation {
    api: false,
    session: "/rest/com/vmware/cis/session",
    vms_named: |name| format!("/rest/vcenter/vm?filter.names.1={name}"),
    tickets: |vm| format!("/rest/vcenter/vm/{vm}/console/tickets"),
    webmks: r#"{"spec":{"type":"WEBMKS"}}"#,
};

impl Generation {
    /// The status and JSON body (`Null` when empty) of a request with these extra headers.
    async fn call(&self, sim: &Sim, method: &str, path: &str, headers: &str, body: &str) -> (u16, Value) {
        let headers = format!("{headers}Content-Type: application/json\r\n");
        let (status, head, body) = https(sim, method, path, &headers, body).await;
        if body.is_empty() {
            return (status, Value::Null);
        }
        assert!(head.to_ascii_lowercase().contains("content-type: application/json"), "{head}");
        (status, serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}")))
    }

    /// A success's value: bare on /api, in `{"value": …}` on /rest.
    fn value(&self, body: Value) -> Value {
        if self.api {
            body
        } else {
            body["value"].clone()
        }
    }

    /// An error's type, checking the generation's error shape.
    fn error(&self, body: &Value) -> String {
        let messages = if self.api { &body["messages"] } else { &body["value"]["messages"] };
        assert!(messages[0]["default_message"].is_string() && messages[0]["id"].is_string(), "{body}");
        if self.api {
            body["error_type"].as_str().unwrap().to_string()
        } else {
            let ty = body["type"].as_str().unwrap();
            ty.strip_prefix("com.vmware.vapi.std.errors.").unwrap_or_else(|| panic!("{body}")).to_ascii_uppercase()
        }
    }

    fn created(&self) -> u16 {
        if self.api {
            201
        } else {
            200
        }
    }
}

/// The status of a login (404 is plain text, not JSON).
async fn login(sim: &Sim, g: &Generation) -> u16 {
    https(sim, "POST", g.session, ROOT_PW, "").await.0
}

fn token_header(token: &str) -> String {
    format!("vmware-api-session-id: {token}\r\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn console_tickets_on_both_generations() {
    let (vnc_port, _keys) = scripted_vnc_server();
    let sim = start_sim(vnc_port, &["--flavour", "vcenter", "--vm", "sut", "--vm", "dark,power=off"]);
    for g in [API, LEGACY] {
        let (status, body) = g.call(&sim, "POST", g.session, "Authorization: Basic cm9vdDp4\r\n", "").await;
        assert_eq!((status, g.error(&body)), (401, "UNAUTHENTICATED".to_string()), "root:x");
        let (status, body) = g.call(&sim, "POST", g.session, ROOT_PW, "").await;
        assert_eq!(status, g.created());
        let token = g.value(body).as_str().unwrap().to_string();
        let auth = token_header(&token);

        let (status, body) = g.call(&sim, "GET", &(g.vms_named)("sut"), &auth, "").await;
        assert_eq!(status, 200);
        let expected = json!([{"vm": "vm-1001", "name": "sut", "power_state": "POWERED_ON", "cpu_count": 1,
            "memory_size_MiB": 256}]);
        assert_eq!(g.value(body), expected);

        let (status, body) = g.call(&sim, "POST", &(g.tickets)("vm-1001"), &auth, g.webmks).await;
        assert_eq!(status, g.created());
        let url = g.value(body)["ticket"].as_str().unwrap().to_string();
        assert!(url.starts_with(&format!("wss://127.0.0.1:{}/ticket/", sim.port)), "{url}");
        let mut ws = connect(&sim, &url, Some("binary")).await.unwrap();
        let greeting = tokio::time::timeout(TIMEOUT, ws.next()).await.expect("no greeting in time");
        assert_eq!(greeting.unwrap().unwrap(), Message::binary(b"RFB 003.008\n".to_vec()));
        drop(ws);
        assert_eq!(refused_status(connect(&sim, &url, Some("binary")).await), 503, "tickets are one-shot");

        let (status, body) = g.call(&sim, "POST", &(g.tickets)("vm-1002"), &auth, g.webmks).await;
        assert_eq!((status, g.error(&body)), (400, "NOT_ALLOWED_IN_CURRENT_STATE".to_string()), "powered off");

        let (status, _) = g.call(&sim, "DELETE", g.session, &auth, "").await;
        assert_eq!(status, if g.api { 204 } else { 200 });
        let (status, body) = g.call(&sim, "POST", &(g.tickets)("vm-1001"), &auth, g.webmks).await;
        assert_eq!((status, g.error(&body)), (401, "UNAUTHENTICATED".to_string()), "a logged-out token");
    }
    let (status, _, stats) = https(&sim, "GET", "/_sim/stats", "", "").await;
    assert_eq!(status, 200);
    let stats: Value = serde_json::from_str(&stats).unwrap();
    let counters = [("logins", 0), ("logouts", 0), ("rest_logins", 2), ("rest_failed_logins", 2), ("rest_logouts", 2)];
    for (counter, n) in counters.into_iter().chain([("tickets_issued", 2), ("tickets_used", 2)]) {
        assert_eq!(stats[counter], n, "{counter} in {stats}");
    }
}

/// Which API paths exist: `--no-soap`, `--rest-generation` and the flavour.
#[tokio::test(flavor = "multi_thread")]
async fn which_apis_exist() {
    let sim = start_sim(9, &["--flavour", "vcenter", "--no-soap", "--rest-generation", "api"]);
    let (status, _, body) = https(&sim, "POST", "/sdk", "Content-Type: text/xml\r\n", "<x/>").await;
    assert_eq!((status, body.as_str()), (404, "webmks-sim: no SOAP API here (--no-soap)\n"));
    assert_eq!(https(&sim, "GET", "/sdk/vimServiceVersions.xml", "", "").await.0, 404);
    assert_eq!((login(&sim, &API).await, login(&sim, &LEGACY).await), (201, 404));
    let (status, body) = API.call(&sim, "GET", "/api/vcenter/nothing", "", "").await;
    assert_eq!((status, API.error(&body)), (404, "NOT_FOUND".to_string()), "an unknown /api path");
    drop(sim);

    let sim = start_sim(9, &["--flavour", "vcenter", "--rest-generation", "rest"]);
    assert_eq!((login(&sim, &API).await, login(&sim, &LEGACY).await), (404, 200));
    assert_eq!(https(&sim, "GET", "/sdk/vimServiceVersions.xml", "", "").await.0, 200, "SOAP stays");
    drop(sim);

    let sim = start_sim(9, &[]);
    assert_eq!((login(&sim, &API).await, login(&sim, &LEGACY).await), (404, 404), "ESXi has no REST API");
}
