//! vCenter's REST console tickets (vSphere Automation API, vCenter 7.0 and later): log in with HTTP basic
//! authentication, find the virtual machine by name if need be, ask for a WEBMKS ticket, log out.
//!
//! Two generations of paths: `/api/…` (vCenter 7.0 U2 and later; answers are the bare values) and the older
//! `/rest/…` (7.0 before U2; answers are wrapped in `{"value": …}`, and requests in a `spec`). A session
//! starts on `/api` and falls back to `/rest` where `/api/session` does not exist.

use base64::Engine;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::Method;
use http_body_util::Full;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value;

use super::connection::{Connection, Response};
use super::soap::shorten;
use super::ticket::Ticket;
use super::{TicketError, VmSelector};

/// The header that carries the session token.
const TOKEN_HEADER: &str = "vmware-api-session-id";

/// What a managed object id may contain unescaped in a path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Which paths the endpoint has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Generation {
    /// `/api/…`, vCenter 7.0 U2 and later.
    Api,
    /// `/rest/…`, vCenter 7.0 before U2 (still served by later versions).
    Rest,
}

impl Generation {
    fn session(self) -> &'static str {
        match self {
            Generation::Api => "/api/session",
            Generation::Rest => "/rest/com/vmware/cis/session",
        }
    }

    /// The request listing the virtual machines called `name` (or its escaped spelling: vSphere stores `%`,
    /// `/` and `\` in names as `%25`, `%2f` and `%5c`).
    fn vms_named(self, name: &str) -> String {
        let key = match self {
            Generation::Api => "names",
            Generation::Rest => "filter.names",
        };
        let escaped = name.replace('%', "%25").replace('/', "%2f").replace('\\', "%5c");
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair(key, name);
        if escaped != name {
            query.append_pair(key, &escaped);
        }
        format!("{}/vcenter/vm?{}", self.prefix(), query.finish())
    }

    fn console_tickets(self, vm: &str) -> String {
        format!("{}/vcenter/vm/{}/console/tickets", self.prefix(), utf8_percent_encode(vm, SEGMENT))
    }

    fn ticket_request(self) -> &'static str {
        match self {
            Generation::Api => r#"{"type":"WEBMKS"}"#,
            Generation::Rest => r#"{"spec":{"type":"WEBMKS"}}"#,
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Generation::Api => "/api",
            Generation::Rest => "/rest",
        }
    }

    /// The answer's value: the body itself, or its `value` member for `/rest`.
    fn value(self, body: Value) -> Result<Value, TicketError> {
        match (self, body) {
            (Generation::Api, body) => Ok(body),
            (Generation::Rest, Value::Object(mut wrapped)) if wrapped.contains_key("value") => {
                Ok(wrapped.remove("value").unwrap_or_default())
            }
            (Generation::Rest, _) => Err(TicketError::Malformed("a /rest answer without \"value\"".into())),
        }
    }
}

/// A logged-in REST session. Neither its token nor the password appears in any error.
pub(crate) struct RestSession<'a> {
    connection: Connection<'a>,
    generation: Generation,
    token: String,
}

impl<'a> RestSession<'a> {
    /// Logs in with the endpoint's user name and password: `/api/session`, or the `/rest` one where that
    /// answers 404.
    pub(crate) async fn login(mut connection: Connection<'a>) -> Result<RestSession<'a>, TicketError> {
        let endpoint = connection.endpoint();
        let credentials = format!("{}:{}", endpoint.username, endpoint.password());
        let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(credentials));
        let mut answer = None;
        for generation in [Generation::Api, Generation::Rest] {
            let request = connection.request(Method::POST, generation.session()).header(AUTHORIZATION, &basic);
            let response = connection.send(request.body(Full::default())).await?;
            if response.status != 404 {
                answer = Some((generation, response));
                break;
            }
        }
        let Some((generation, response)) = answer else {
            return Err(TicketError::Unsupported(
                "the endpoint has no REST API (/api/session and /rest/com/vmware/cis/session: HTTP 404); REST \
                 console tickets are vCenter's (7.0 and later), ESXi hosts give tickets through the SOAP API \
                 (VMWARE_VNC_OVER_WS_API=soap or auto, --api)"
                    .into(),
            ));
        };
        let token = match parse(generation, response) {
            Ok(Value::String(token)) if !token.is_empty() => token,
            Ok(_) => return Err(TicketError::Malformed("the session token is not a string".into())),
            Err(TicketError::NotAuthenticated(_)) => return Err(TicketError::InvalidLogin),
            Err(e) => return Err(e),
        };
        Ok(RestSession { connection, generation, token })
    }

    /// The managed object id of the virtual machine `vm` names: a managed object id as it is, a name looked
    /// up. Inventory paths and BIOS UUIDs are the SOAP API's.
    pub(crate) async fn find_vm(&mut self, vm: &VmSelector) -> Result<String, TicketError> {
        let name = match vm {
            VmSelector::MoId(moid) => return Ok(moid.clone()),
            VmSelector::Name(name) => name,
            VmSelector::InventoryPath(_) | VmSelector::Uuid(_) => {
                return Err(TicketError::Unsupported(format!(
                    "the REST API finds virtual machines by managed object id or name, not by {vm}; \
                     use the SOAP API (VMWARE_VNC_OVER_WS_API=soap, --api soap)"
                )))
            }
        };
        let listed = self.call(Method::GET, &self.generation.vms_named(name), None).await?;
        let escaped = name.replace('%', "%25").replace('/', "%2f").replace('\\', "%5c");
        let mut matches: Vec<String> = listed
            .as_array()
            .ok_or_else(|| TicketError::Malformed("the list of virtual machines is not a JSON array".into()))?
            .iter()
            .filter(|summary| summary["name"].as_str().is_some_and(|n| n == name || n == escaped))
            .filter_map(|summary| summary["vm"].as_str().map(str::to_owned))
            .collect();
        match matches.len() {
            1 => Ok(matches.remove(0)),
            0 => Err(TicketError::VmNotFound(vm.to_string())),
            count => Err(TicketError::Ambiguous { selector: vm.to_string(), count }),
        }
    }

    /// A WEBMKS console ticket for the virtual machine with managed object id `vm`.
    pub(crate) async fn console_ticket(&mut self, vm: &str) -> Result<Ticket, TicketError> {
        let path = self.generation.console_tickets(vm);
        let answer = self.call(Method::POST, &path, Some(self.generation.ticket_request())).await?;
        match answer["ticket"].as_str() {
            Some(url) => Ticket::from_url(url),
            None => Err(TicketError::Malformed("the console ticket answer has no ticket".into())),
        }
    }

    /// Deletes the session.
    pub(crate) async fn logout(&mut self) -> Result<(), TicketError> {
        self.call(Method::DELETE, self.generation.session(), None).await.map(drop)
    }

    /// One call in the session: the answer's value, or the error the endpoint reported.
    async fn call(&mut self, method: Method, path: &str, body: Option<&'static str>) -> Result<Value, TicketError> {
        let mut request = self.connection.request(method, path).header(TOKEN_HEADER, &self.token);
        if body.is_some() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        let body = Full::new(Bytes::from_static(body.unwrap_or_default().as_bytes()));
        let response = self.connection.send(request.body(body)).await?;
        parse(self.generation, response)
    }
}

/// The value of a successful answer (an empty body is `null`), or the error of an unsuccessful one.
pub(super) fn parse(generation: Generation, response: Response) -> Result<Value, TicketError> {
    if !(200..300).contains(&response.status) {
        return Err(error(response.status, &response.text()));
    }
    if response.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    let body = serde_json::from_slice(&response.body)
        .map_err(|e| TicketError::Malformed(format!("the answer is not JSON: {e}")))?;
    generation.value(body)
}

/// The error an unsuccessful answer reports, in either generation's shape: `{"error_type": "NOT_FOUND",
/// "messages": [{"default_message": …}]}`, or `{"type": "com.vmware.vapi.std.errors.not_found", "value":
/// {"messages": […]}}`.
fn error(status: u16, body: &str) -> TicketError {
    let json: Value = serde_json::from_str(body).unwrap_or_default();
    let (kind, messages) = match (json["error_type"].as_str(), json["type"].as_str()) {
        (Some(kind), _) => (kind.to_owned(), &json["messages"]),
        (None, Some(kind)) => {
            (kind.rsplit('.').next().unwrap_or(kind).to_ascii_uppercase(), &json["value"]["messages"])
        }
        (None, None) => return TicketError::Http { status, message: shorten(body) },
    };
    let message = messages
        .as_array()
        .map(|messages| messages.iter().filter_map(|m| m["default_message"].as_str()).collect::<Vec<_>>().join(" "))
        .filter(|message| !message.is_empty())
        .unwrap_or_else(|| shorten(body));
    match kind.as_str() {
        "UNAUTHENTICATED" | "UNAUTHORIZED" => TicketError::NotAuthenticated(message),
        "NOT_FOUND" => TicketError::NotCreated(message),
        "NOT_ALLOWED_IN_CURRENT_STATE" => TicketError::PoweredOff(message),
        _ => TicketError::Rest { status, error_type: kind, message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_of_both_generations() {
        assert_eq!(Generation::Api.session(), "/api/session");
        assert_eq!(Generation::Rest.session(), "/rest/com/vmware/cis/session");
        assert_eq!(Generation::Api.vms_named("my vm+1"), "/api/vcenter/vm?names=my+vm%2B1");
        assert_eq!(Generation::Rest.vms_named("a/b"), "/rest/vcenter/vm?filter.names=a%2Fb&filter.names=a%252fb");
        assert_eq!(Generation::Api.console_tickets("vm-1001"), "/api/vcenter/vm/vm-1001/console/tickets");
        assert_eq!(Generation::Rest.console_tickets("vm/x y"), "/rest/vcenter/vm/vm%2Fx%20y/console/tickets");
        assert_eq!(Generation::Api.ticket_request(), r#"{"type":"WEBMKS"}"#);
        assert_eq!(Generation::Rest.ticket_request(), r#"{"spec":{"type":"WEBMKS"}}"#);
    }

    fn answer(status: u16, body: &str) -> Response {
        Response { status, headers: Default::default(), body: Bytes::copy_from_slice(body.as_bytes()) }
    }

    #[test]
    fn values_of_both_generations() {
        assert_eq!(parse(Generation::Api, answer(201, r#""tok""#)).unwrap(), Value::from("tok"));
        assert_eq!(parse(Generation::Rest, answer(200, r#"{"value":"tok"}"#)).unwrap(), Value::from("tok"));
        assert_eq!(parse(Generation::Api, answer(204, "")).unwrap(), Value::Null);
        assert_eq!(parse(Generation::Rest, answer(200, " \n")).unwrap(), Value::Null);
        assert!(matches!(parse(Generation::Rest, answer(200, r#""tok""#)), Err(TicketError::Malformed(_))));
        assert!(matches!(parse(Generation::Api, answer(200, "<html>")), Err(TicketError::Malformed(_))));
    }

    #[test]
    fn errors_of_both_generations() {
        let new = |kind: &str| {
            format!(r#"{{"error_type":"{kind}","messages":[{{"args":[],"default_message":"Said {kind}.","id":"x"}}]}}"#)
        };
        let old = |kind: &str| {
            format!(
                r#"{{"type":"com.vmware.vapi.std.errors.{kind}","value":{{"messages":[{{"args":[],"default_message":"Said {kind}.","id":"x"}}]}}}}"#
            )
        };
        assert_eq!(error(401, &new("UNAUTHENTICATED")), TicketError::NotAuthenticated("Said UNAUTHENTICATED.".into()));
        assert_eq!(error(401, &old("unauthenticated")), TicketError::NotAuthenticated("Said unauthenticated.".into()));
        assert_eq!(error(404, &new("NOT_FOUND")), TicketError::NotCreated("Said NOT_FOUND.".into()));
        assert_eq!(
            error(400, &old("not_allowed_in_current_state")),
            TicketError::PoweredOff("Said not_allowed_in_current_state.".into())
        );
        assert_eq!(
            error(503, &new("SERVICE_UNAVAILABLE")),
            TicketError::Rest {
                status: 503,
                error_type: "SERVICE_UNAVAILABLE".into(),
                message: "Said SERVICE_UNAVAILABLE.".into()
            }
        );
        assert_eq!(
            error(400, r#"{"error_type":"INVALID_ARGUMENT","messages":[]}"#),
            TicketError::Rest {
                status: 400,
                error_type: "INVALID_ARGUMENT".into(),
                message: r#"{"error_type":"INVALID_ARGUMENT","messages":[]}"#.into()
            }
        );
        assert_eq!(
            error(502, "<html> Bad   gateway </html>"),
            TicketError::Http { status: 502, message: "<html> Bad gateway </html>".into() }
        );
        assert!(TicketError::Rest { status: 503, error_type: String::new(), message: String::new() }.retryable());
    }
}
