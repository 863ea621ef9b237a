use std::time::{Duration, Instant};

use super::*;

/// `root:pw`, the test simulator's user.
const ROOT_PW: &str = "Basic cm9vdDpwdw==";

/// One request through [`handle`]: its status and JSON body. `target` may carry a query.
fn call(
    sim: &Sim,
    face: Face,
    method: Method,
    target: &str,
    auth: (Option<&str>, Option<&str>),
    body: &str,
) -> (u16, Option<Value>) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let call = Call { face, method, path, query, authorization: auth.0, token: auth.1, body: body.as_bytes() };
    let (status, body) = outcome(face, &handle(sim, &call));
    (status.as_u16(), body)
}

/// The paths of one face.
struct Paths {
    face: Face,
    session: &'static str,
    vms: &'static str,
    names: &'static str,
    tickets: fn(&str) -> String,
    spec: fn(&str) -> String,
}

const API: Paths = Paths {
    face: Face::Api,
    session: "/api/session",
    vms: "/api/vcenter/vm",
    names: "names",
    tickets: |vm| format!("/api/vcenter/vm/{vm}/console/tickets"),
    spec: |ty| format!("{{\"type\":\"{ty}\"}}"),
};

const REST: Paths = Paths {
    face: Face::Rest,
    session: "/rest/com/vmware/cis/session",
    vms: "/rest/vcenter/vm",
    names: "filter.names",
    tickets: |vm| format!("/rest/vcenter/vm/{vm}/console/tickets"),
    spec: |ty| format!("{{\"spec\":{{\"type\":\"{ty}\"}}}}"),
};

/// A value as the face returns it: bare on /api, in `{"value": …}` on /rest.
fn unwrap(face: Face, body: Option<Value>) -> Value {
    let body = body.expect("a body");
    match face {
        Face::Api => body,
        Face::Rest => body["value"].clone(),
    }
}

/// The error type of an error body in either shape.
fn error_type(body: &Option<Value>) -> String {
    let body = body.as_ref().expect("an error body");
    match body.get("error_type") {
        Some(t) => t.as_str().unwrap().to_string(),
        None => body["type"].as_str().unwrap().trim_start_matches("com.vmware.vapi.std.errors.").to_ascii_uppercase(),
    }
}

#[test]
fn error_shapes() {
    assert_eq!(
        Error::Unauthenticated.body(Face::Api),
        json!({"error_type": "UNAUTHENTICATED", "messages": [{"args": [], "default_message": "Authentication required.",
            "id": "com.vmware.vapi.endpoint.method.authentication.required"}]})
    );
    assert_eq!(
        Error::NoSuchVm("vm-9".into()).body(Face::Rest),
        json!({"type": "com.vmware.vapi.std.errors.not_found", "value": {"messages": [{"args": ["vm-9"],
            "default_message": "Virtual machine with identifier 'vm-9' does not exist.",
            "id": "com.vmware.api.vcenter.vm.not_found"}]}})
    );
    let off = Error::PoweredOff("vm-2".into()).body(Face::Api);
    assert!(off["messages"][0]["default_message"].as_str().unwrap().contains("only when the VM is turned on"));
    let wrong = reply(Face::Api, Err(Error::WrongMethod(vec![Method::POST, Method::DELETE])));
    assert_eq!(wrong.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong.headers()[header::ALLOW], "POST, DELETE");
    let anonymous = reply(Face::Rest, Err(Error::Unauthenticated));
    assert_eq!(anonymous.headers()[header::WWW_AUTHENTICATE], "Basic realm=\"VAPI endpoint\"");
    assert_eq!(anonymous.headers()[header::CONTENT_TYPE], "application/json");
    let deleted = reply(Face::Api, Ok(Done::empty()));
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert!(deleted.headers().get(header::CONTENT_TYPE).is_none());
}

#[test]
fn routing() {
    let op = |face, method, path: &str, query| operation(face, &method, path, query);
    assert_eq!(op(Face::Api, Method::POST, "/session", ""), Ok(Operation::Login));
    assert_eq!(op(Face::Api, Method::GET, "/session", ""), Ok(Operation::SessionInfo));
    assert_eq!(op(Face::Rest, Method::DELETE, "/com/vmware/cis/session", ""), Ok(Operation::Logout));
    assert_eq!(op(Face::Rest, Method::POST, "/com/vmware/cis/session", "~action=get"), Ok(Operation::SessionInfo));
    assert_eq!(op(Face::Rest, Method::POST, "/session", ""), Err(Error::NoSuchPath), "the /api path on /rest");
    assert_eq!(op(Face::Api, Method::GET, "/vcenter/vm", "names=a"), Ok(Operation::ListVms));
    assert_eq!(
        op(Face::Rest, Method::POST, "/vcenter/vm/vm-7/console/tickets", ""),
        Ok(Operation::ConsoleTicket("vm-7".into()))
    );
    assert_eq!(
        op(Face::Api, Method::POST, "/vcenter/vm/vm%2Dx%20y/console/tickets", ""),
        Ok(Operation::ConsoleTicket("vm-x y".into())),
        "the id is percent-decoded"
    );
    assert_eq!(
        op(Face::Api, Method::GET, "/vcenter/vm/vm-7/console/tickets", ""),
        Err(Error::WrongMethod(vec![Method::POST]))
    );
    for unknown in
        ["", "/", "/vcenter", "/vcenter/vm/", "/vcenter/vm//console/tickets", "/vcenter/vm/a/b/console/tickets"]
    {
        assert_eq!(op(Face::Api, Method::POST, unknown, ""), Err(Error::NoSuchPath), "{unknown:?}");
    }

    let mut sim = Sim::for_tests(0);
    assert_eq!(face_of(&sim, "/api/session"), None, "ESXi has no REST API");
    sim.inventory.flavour = Flavour::Vcenter;
    assert_eq!(face_of(&sim, "/api/session"), Some(Face::Api));
    assert_eq!(face_of(&sim, "/api"), Some(Face::Api));
    assert_eq!(face_of(&sim, "/rest/vcenter/vm"), Some(Face::Rest));
    assert_eq!(face_of(&sim, "/apis"), None);
    sim.settings.rest_generations = Generations::Rest;
    assert_eq!((face_of(&sim, "/api/session"), face_of(&sim, "/rest/x")), (None, Some(Face::Rest)));
    sim.settings.rest_generations = Generations::Api;
    assert_eq!((face_of(&sim, "/api/session"), face_of(&sim, "/rest/x")), (Some(Face::Api), None));
}

#[test]
fn name_filters() {
    let names = |face, q| name_filter(face, q).unwrap();
    assert_eq!(names(Face::Api, ""), None);
    assert_eq!(
        names(Face::Api, "names=a%20b&names=c+d&power_states=POWERED_ON"),
        Some(vec!["a b".into(), "c d".into()])
    );
    assert_eq!(names(Face::Api, "filter.names=a"), None, "the legacy key is not /api's");
    assert_eq!(
        names(Face::Rest, "filter.names=a&filter.names.1=b&filter.names.x=c"),
        Some(vec!["a".into(), "b".into()])
    );
    assert_eq!(names(Face::Rest, "filter.names=%2B"), Some(vec!["+".into()]));
    assert!(matches!(name_filter(Face::Api, "names=%zz"), Err(Error::InvalidArgument(_))));
}

/// Sessions, the VM list and tickets, the same on both faces.
#[test]
fn sessions_vms_and_tickets() {
    let sim = Sim::for_tests(0);
    for (n, p) in [API, REST].iter().enumerate() {
        let face = p.face;
        let wrong = call(&sim, face, Method::POST, p.session, (Some("Basic cm9vdDp4"), None), "");
        assert_eq!((wrong.0, error_type(&wrong.1)), (401, "UNAUTHENTICATED".to_string()));
        let missing = call(&sim, face, Method::POST, p.session, (None, None), "");
        assert_eq!(missing.0, 401);

        let (status, body) = call(&sim, face, Method::POST, p.session, (Some(ROOT_PW), None), "");
        assert_eq!(status, if face == Face::Api { 201 } else { 200 });
        let token = unwrap(face, body).as_str().unwrap().to_string();
        let auth = (None, Some(token.as_str()));
        let info = if face == Face::Api {
            call(&sim, face, Method::GET, p.session, auth, "")
        } else {
            call(&sim, face, Method::POST, &format!("{}?~action=get", p.session), auth, "")
        };
        assert_eq!((info.0, &unwrap(face, info.1)["user"]), (200, &json!("root")));

        let listed = call(&sim, face, Method::GET, &format!("{}?{}=off", p.vms, p.names), auth, "");
        assert_eq!(
            unwrap(face, listed.1),
            json!([{"vm": "2", "name": "off", "power_state": "POWERED_OFF", "cpu_count": 1, "memory_size_MiB": 256}])
        );
        let all = call(&sim, face, Method::GET, p.vms, auth, "");
        assert_eq!(unwrap(face, all.1).as_array().unwrap().len(), 2);
        let none = call(&sim, face, Method::GET, &format!("{}?{}=nope", p.vms, p.names), auth, "");
        assert_eq!((none.0, unwrap(face, none.1)), (200, json!([])));
        assert_eq!(call(&sim, face, Method::GET, p.vms, (None, None), "").0, 401);

        let ticket = call(&sim, face, Method::POST, &(p.tickets)("1"), auth, &(p.spec)("WEBMKS"));
        assert_eq!(ticket.0, if face == Face::Api { 201 } else { 200 });
        let url = unwrap(face, ticket.1)["ticket"].as_str().unwrap().to_string();
        let id = url.strip_prefix("wss://127.0.0.1:8443/ticket/").unwrap_or_else(|| panic!("{url}"));
        let cases = [
            ((p.tickets)("2"), (p.spec)("WEBMKS"), 400, "NOT_ALLOWED_IN_CURRENT_STATE"),
            ((p.tickets)("9"), (p.spec)("WEBMKS"), 404, "NOT_FOUND"),
            ((p.tickets)("1"), (p.spec)("VMRC"), 400, "INVALID_ARGUMENT"),
            ((p.tickets)("1"), "{}".to_string(), 400, "INVALID_ARGUMENT"),
            ((p.tickets)("1"), "type=WEBMKS".to_string(), 400, "INVALID_ARGUMENT"),
        ];
        for (path, body, status, kind) in cases {
            let (got, error) = call(&sim, face, Method::POST, &path, auth, &body);
            assert_eq!((got, error_type(&error)), (status, kind.to_string()), "{path} {body}");
        }

        let (status, body) = call(&sim, face, Method::DELETE, p.session, auth, "");
        assert_eq!((status, body), (if face == Face::Api { 204 } else { 200 }, None));
        let dead = call(&sim, face, Method::POST, &(p.tickets)("1"), auth, &(p.spec)("WEBMKS"));
        assert_eq!((dead.0, error_type(&dead.1)), (401, "UNAUTHENTICATED".to_string()));
        assert_eq!(call(&sim, face, Method::DELETE, p.session, auth, "").0, 401, "logged out already");
        let redeemed = lock(&sim.tickets).redeem(id, &lock(&sim.sessions), Instant::now());
        assert_eq!(redeemed, Err(tickets::Refusal::LoggedOut), "the ticket died with its session");

        let stats = sim.stats.to_json();
        let sessions = format!("\"rest_logins\":{0},\"rest_failed_logins\":{0},\"rest_logouts\":{0},", n + 1);
        assert!(
            stats.starts_with("{\"logins\":0,\"failed_logins\":0,\"logouts\":0,") && stats.contains(&sessions),
            "{stats}"
        );
        assert!(stats.contains(&format!("\"tickets_issued\":{},", n + 1)), "{stats}");
    }
    let soap = sim.login("root", "pw", Api::Soap).unwrap();
    let (status, _) = call(&sim, Face::Api, Method::GET, API.vms, (None, Some(&soap)), "");
    assert_eq!(status, 401, "a SOAP session is no REST token");
}

#[test]
fn tickets_wait_for_the_mks_and_follow_the_ticket_host() {
    let mut sim = Sim::for_tests(1);
    sim.settings.mks_delay = Duration::from_secs(60);
    sim.settings.ticket_host = Some(String::new());
    lock(&sim.model).vms.by_moid_mut("1").unwrap().powered_on_at = Some(Instant::now());
    let (_, body) = call(&sim, Face::Api, Method::POST, API.session, (Some(ROOT_PW), None), "");
    let token = body.unwrap().as_str().unwrap().to_string();
    let ticket =
        || call(&sim, Face::Api, Method::POST, &(API.tickets)("1"), (None, Some(&token)), "{\"type\":\"WEBMKS\"}");
    let refused = ticket();
    assert_eq!((refused.0, error_type(&refused.1)), (503, "SERVICE_UNAVAILABLE".to_string()), "--refuse-tickets 1");
    let starting = ticket();
    assert_eq!(starting.0, 503);
    let text = starting.1.unwrap()["messages"][0]["default_message"].as_str().unwrap().to_string();
    assert!(text.contains("'mks' is not available"), "{text}");

    lock(&sim.model).vms.by_moid_mut("1").unwrap().powered_on_at = None;
    let (status, body) = ticket();
    assert_eq!(status, 201);
    let url = body.unwrap()["ticket"].as_str().unwrap().to_string();
    assert!(url.starts_with("wss://127.0.0.1:8443/ticket/"), "an empty --ticket-host: the listen address: {url}");
}
