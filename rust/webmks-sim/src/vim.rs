//! The vSphere API subset: one function per SOAP method, against the simulator's state.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::control::bump;
use crate::inventory::Vm;
use crate::sessions::set_cookie;
use crate::sim::{lock, Sim};
use crate::soap::{at_least, escape, moref, requested_version, response, Fault, Request};
use crate::tickets::short;

/// An HTTP answer to a SOAP call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub set_cookie: Option<String>,
}

/// Handles a parsed call. `session` is the id from the `vmware_soap_session` cookie, `soap_action` the
/// SOAPAction header (its version decides which ticket fields exist).
pub fn call(sim: &Sim, req: &Request, session: Option<&str>, soap_action: Option<&str>) -> Reply {
    let mut cookie = None;
    let result = dispatch(sim, req, session, soap_action, &mut cookie);
    match result {
        Ok(inner) => {
            if !matches!(req.method(), "Login" | "Logout" | "AcquireTicket") {
                log!("SOAP {}", req.method());
            }
            Reply { status: 200, body: response(req.method(), &inner), set_cookie: cookie }
        }
        Err(fault) => {
            log!("SOAP {} -> fault {}: {}", req.method(), fault.kind, fault.message);
            Reply { status: 500, body: fault.to_xml(), set_cookie: cookie }
        }
    }
}

fn dispatch(
    sim: &Sim,
    req: &Request,
    session: Option<&str>,
    soap_action: Option<&str>,
    cookie: &mut Option<String>,
) -> Result<String, Fault> {
    let (ty, id) = req.this();
    match req.method() {
        "RetrieveServiceContent" => {
            return Ok(format!("<returnval>{}</returnval>", sim.inventory.service_content_xml()))
        }
        "Login" => return login(sim, req, cookie),
        _ => {}
    }
    let session = session.filter(|s| lock(&sim.sessions).is_live(s)).ok_or_else(|| Fault::not_authenticated(ty, id))?;
    let views = || lock(&sim.views);
    let inv = &sim.inventory;
    match req.method() {
        "Logout" => {
            let mut sessions = lock(&sim.sessions);
            let user = sessions.get(session).map(|s| s.user.clone()).unwrap_or_default();
            sessions.logout(session);
            bump(&sim.stats.logouts);
            log!("SOAP Logout of '{user}'");
            Ok(String::new())
        }
        "FindByInventoryPath" => {
            let path = req.param("inventoryPath").unwrap_or_default();
            Ok(inv.by_path(path).map(vm_returnval).unwrap_or_default())
        }
        "FindByUuid" => {
            let uuid = req.param("uuid").unwrap_or_default();
            let vm_search = req.param("vmSearch") == Some("true");
            let instance = req.param("instanceUuid") == Some("true");
            Ok(inv.by_uuid(uuid).filter(|_| vm_search && !instance).map(vm_returnval).unwrap_or_default())
        }
        "CreateContainerView" => {
            let (cty, cid) = req.call.child("container").map(|c| c.moref()).unwrap_or_default();
            if (cty, cid) != ("Folder", inv.well_known().root_folder) {
                return Err(Fault::object_not_found(cty, cid));
            }
            let types: Vec<&str> = req.call.children("type").map(|t| t.text.trim()).collect();
            let key = lock(&sim.sessions).get(session).map(|s| s.key.clone()).unwrap_or_default();
            Ok(moref("returnval", "ContainerView", &views().create(inv, &key, &types)))
        }
        "DestroyView" => views().destroy(id).then(String::new).ok_or_else(|| Fault::object_not_found(ty, id)),
        "RetrievePropertiesEx" => {
            let max = req.call.child("options").and_then(|o| o.text_of("maxObjects")).and_then(|m| m.parse().ok());
            let (objects, token) = views().retrieve(inv, &req.call, max)?;
            Ok(retrieve_result(&objects, token.as_deref()))
        }
        "ContinueRetrievePropertiesEx" => {
            let objects = views().continue_retrieve(req.param("token").unwrap_or_default())?;
            Ok(retrieve_result(&objects, None))
        }
        "CancelRetrievePropertiesEx" => {
            views().cancel_retrieve(req.param("token").unwrap_or_default());
            Ok(String::new())
        }
        "RetrieveProperties" => {
            let (objects, _) = views().retrieve(inv, &req.call, None)?;
            Ok(objects
                .iter()
                .map(|o| o.replacen("<objects>", "<returnval>", 1).replace("</objects>", "</returnval>"))
                .collect())
        }
        "Fetch" => views().fetch(inv, ty, id, req.param("prop").unwrap_or_default()),
        "AcquireTicket" => acquire_ticket(sim, req, session, soap_action),
        method => Err(Fault::method_not_found(ty, id, method)),
    }
}

fn vm_returnval(vm: &Vm) -> String {
    moref("returnval", "VirtualMachine", &vm.moid)
}

fn retrieve_result(objects: &[String], token: Option<&str>) -> String {
    if objects.is_empty() && token.is_none() {
        return String::new();
    }
    let token = token.map(|t| format!("<token>{t}</token>")).unwrap_or_default();
    format!("<returnval>{token}{}</returnval>", objects.concat())
}

fn login(sim: &Sim, req: &Request, cookie: &mut Option<String>) -> Result<String, Fault> {
    let user = req.param("userName").unwrap_or_default();
    let password = req.call.child("password").map(|p| p.text.as_str()).unwrap_or_default();
    if user != sim.settings.user || password != sim.settings.password {
        bump(&sim.stats.failed_logins);
        log!("SOAP Login as '{user}' refused");
        return Err(Fault::invalid_login());
    }
    let mut sessions = lock(&sim.sessions);
    let id = sessions.login(user);
    let key = sessions.get(&id).map(|s| s.key.clone()).unwrap_or_default();
    drop(sessions);
    bump(&sim.stats.logins);
    log!("SOAP Login as '{user}'");
    *cookie = Some(set_cookie(&id));
    let now = iso8601(SystemTime::now());
    Ok(format!(
        "<returnval><key>{key}</key><userName>{user}</userName><fullName>{full}</fullName>\
         <loginTime>{now}</loginTime><lastActiveTime>{now}</lastActiveTime><locale>en</locale>\
         <messageLocale>en</messageLocale><extensionSession>false</extensionSession>\
         <ipAddress>127.0.0.1</ipAddress><userAgent>webmks-sim</userAgent><callCount>0</callCount></returnval>",
        user = escape(user),
        full = if user == "root" { "root" } else { "" },
    ))
}

fn acquire_ticket(sim: &Sim, req: &Request, session: &str, soap_action: Option<&str>) -> Result<String, Fault> {
    let (ty, id) = req.this();
    let (vm_index, vm) = sim
        .inventory
        .vms
        .iter()
        .enumerate()
        .find(|(_, v)| ty == "VirtualMachine" && v.moid == id)
        .ok_or_else(|| Fault::object_not_found(ty, id))?;
    if sim.control.take_refusal() {
        log!("AcquireTicket on {id}: refused as asked (--refuse-tickets)");
        return Err(Fault::object_not_found("VirtualMachine", id));
    }
    let ticket_type = req.param("ticketType").unwrap_or_default();
    if ticket_type != "webmks" {
        return Err(Fault::invalid_argument("ticketType"));
    }
    if !vm.powered_on {
        return Err(Fault::invalid_state());
    }
    let ticket = lock(&sim.tickets).issue(vm_index, session, sim.settings.ticket_ttl, Instant::now());
    bump(&sim.stats.tickets_issued);
    let version = requested_version(soap_action);
    let host = sim.ticket_host();
    let port = sim.local.port();
    let thumbs = &sim.ticket_thumbprints;
    let mut xml = format!("<ticket>{ticket}</ticket><cfgFile>[datastore1] {0}/{0}.vmx</cfgFile>", escape(&vm.name));
    if !host.is_empty() {
        xml.push_str(&format!("<host>{}</host>", escape(&host)));
    }
    xml.push_str(&format!("<port>{port}</port><sslThumbprint>{}</sslThumbprint>", thumbs.sha1));
    if at_least(version.as_deref(), &[7, 0, 3, 1]) {
        xml.push_str(&format!(
            "<certThumbprintList><thumbprint>{}</thumbprint><hashAlgorithm>sha256</hashAlgorithm></certThumbprintList>",
            thumbs.sha256
        ));
    }
    if sim.settings.ticket_url && !host.is_empty() && at_least(version.as_deref(), &[7, 0]) {
        let authority = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
        xml.push_str(&format!("<url>wss://{}/ticket/{ticket}</url>", escape(&authority)));
    }
    log!("AcquireTicket on {id} ({}): ticket {}", vm.name, short(&ticket));
    Ok(format!("<returnval>{xml}</returnval>"))
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` in UTC.
pub fn iso8601(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = ((secs / 86400) as i64, secs % 86400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian calendar, eras of 400 years).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn call_xml(sim: &Sim, body: &str, session: Option<&str>, version: Option<&str>) -> Reply {
        let xml = format!("<Envelope><Body>{body}</Body></Envelope>");
        let action = version.map(|v| format!("\"urn:vim25/{v}\""));
        call(sim, &Request::parse(xml.as_bytes()).unwrap(), session, action.as_deref())
    }

    fn login(sim: &Sim, password: &str) -> Reply {
        let body = format!(
            "<Login><_this type=\"SessionManager\">ha-sessionmgr</_this><userName>root</userName>\
             <password>{password}</password></Login>"
        );
        call_xml(sim, &body, None, Some("8.0.2.0"))
    }

    fn ticket(sim: &Sim, moid: &str, session: Option<&str>, version: Option<&str>) -> Reply {
        let body = format!(
            "<AcquireTicket><_this type=\"VirtualMachine\">{moid}</_this>\
             <ticketType xsi:type=\"xsd:string\">webmks</ticketType></AcquireTicket>"
        );
        call_xml(sim, &body, session, version)
    }

    fn session_of(reply: &Reply) -> String {
        let cookie = reply.set_cookie.as_deref().unwrap();
        crate::sessions::session_from_cookie(cookie).unwrap().to_string()
    }

    #[test]
    fn login_faults_and_session_checks() {
        let sim = Sim::for_tests(0);
        let bad = login(&sim, "nope");
        assert_eq!((bad.status, bad.set_cookie.is_none()), (500, true));
        assert!(bad.body.contains("<InvalidLoginFault xmlns=\"urn:vim25\" xsi:type=\"InvalidLogin\">"));
        let anonymous = ticket(&sim, "1", None, Some("8.0.2.0"));
        assert!(anonymous.body.contains("xsi:type=\"NotAuthenticated\""), "{}", anonymous.body);
        let ok = login(&sim, "pw");
        assert_eq!(ok.status, 200);
        assert!(ok.set_cookie.as_deref().unwrap().ends_with("\"; Path=/; HttpOnly; Secure"));
        assert!(ok.body.contains("<LoginResponse xmlns=\"urn:vim25\"><returnval><key>52"));
        let sid = session_of(&ok);
        let off = ticket(&sim, "2", Some(&sid), Some("8.0.2.0"));
        assert!(off.body.contains("xsi:type=\"InvalidState\""), "{}", off.body);
        let gone = ticket(&sim, "9", Some(&sid), Some("8.0.2.0"));
        assert!(gone.body.contains(
            "<faultstring>The object 'vim.VirtualMachine:9' has already been deleted or has not been \
             completely created</faultstring>"
        ));
        let unknown = call_xml(
            &sim,
            "<PowerOnVM_Task><_this type=\"VirtualMachine\">1</_this></PowerOnVM_Task>",
            Some(&sid),
            None,
        );
        assert!(unknown.body.contains("xsi:type=\"MethodNotFound\""));
        let stats = sim.stats.to_json();
        assert!(stats.contains("\"logins\":1,\"failed_logins\":1,"), "{stats}");
    }

    #[test]
    fn ticket_fields_follow_the_requested_version() {
        let sim = Sim::for_tests(1);
        let sid = session_of(&login(&sim, "pw"));
        let refused = ticket(&sim, "1", Some(&sid), Some("8.0.2.0"));
        assert!(refused.body.contains("xsi:type=\"ManagedObjectNotFound\""), "--refuse-tickets 1");
        let new = ticket(&sim, "1", Some(&sid), Some("8.0.2.0")).body;
        assert!(new.contains("<cfgFile>[datastore1] on/on.vmx</cfgFile><host>127.0.0.1</host><port>8443</port>"));
        assert!(new.contains("<sslThumbprint>AA:BB</sslThumbprint><certThumbprintList><thumbprint>CC:DD</thumbprint>"));
        assert!(new.contains("<url>wss://127.0.0.1:8443/ticket/"));
        let v7 = ticket(&sim, "1", Some(&sid), Some("7.0.3.0")).body;
        assert!(v7.contains("<url>") && !v7.contains("certThumbprintList"));
        let v67 = ticket(&sim, "1", Some(&sid), Some("6.7.3")).body;
        assert!(!v67.contains("<url>") && v67.contains("<sslThumbprint>"));
        let none = ticket(&sim, "1", Some(&sid), None).body;
        assert!(!none.contains("<url>"), "no SOAPAction: the oldest dialect");
    }

    #[test]
    fn timestamps() {
        assert_eq!(iso8601(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(UNIX_EPOCH + Duration::from_millis(951_782_400_123)), "2000-02-29T00:00:00.123Z");
        assert_eq!(iso8601(UNIX_EPOCH + Duration::from_secs(1_767_225_599)), "2025-12-31T23:59:59.000Z");
    }
}
