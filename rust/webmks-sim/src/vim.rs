//! The vSphere API subset: one SOAP method at a time, against the simulator's state. Sessions and the
//! SearchIndex are here; the PropertyCollector is in [`crate::collector`] and [`crate::filters`], VM operations
//! in [`crate::lifecycle`], tickets in [`crate::acquire`].

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::acquire::acquire_ticket;
use crate::collector::{collect, describe, fetch};
use crate::lifecycle;
use crate::objects::Ref;
use crate::search;
use crate::sessions::{set_cookie, Api, Session};
use crate::sim::{lock, Model, Sim};
use crate::soap::{escape, moref, response, Element, Fault, Request};
use crate::values::iso8601;
use crate::views::View;

/// The longest a `WaitForUpdates` call waits for a change before it answers with no updates.
const WAIT_CAP: Duration = Duration::from_secs(60);

/// An HTTP answer to a SOAP call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub set_cookie: Option<String>,
}

/// Handles a parsed call. `session` is the id from the `vmware_soap_session` cookie, `soap_action` the
/// SOAPAction header (its version decides which ticket fields exist).
pub async fn call(sim: &Arc<Sim>, req: &Request, session: Option<&str>, soap_action: Option<&str>) -> Reply {
    let mut cookie = None;
    let result = dispatch(sim, req, session, soap_action, &mut cookie).await;
    match result {
        Ok(inner) => {
            match req.method() {
                "Login" | "Logout" | "AcquireTicket" => {}
                "RetrieveProperties" | "RetrievePropertiesEx" | "CreateFilter" => {
                    let specs = req.call.children("specSet").chain(req.call.children("spec"));
                    log!("SOAP {} {}", req.method(), specs.map(describe).collect::<Vec<_>>().join("; "));
                }
                method => log!("SOAP {method}"),
            }
            Reply { status: 200, body: response(req.method(), &inner), set_cookie: cookie }
        }
        Err(fault) => {
            log!("SOAP {} -> fault {}: {}", req.method(), fault.kind, fault.message);
            Reply { status: 500, body: fault.to_xml(), set_cookie: cookie }
        }
    }
}

async fn dispatch(
    sim: &Arc<Sim>,
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
    let (sid, s) = session
        .and_then(|sid| sim.session(sid, Api::Soap).map(|s| (sid, s)))
        .ok_or_else(|| Fault::not_authenticated(ty, id))?;
    let inv = &sim.inventory;
    match req.method() {
        "Logout" => {
            sim.logout(sid);
            Ok(String::new())
        }
        "CurrentTime" => Ok(format!("<returnval>{}</returnval>", iso8601(SystemTime::now()))),
        "FindByInventoryPath" => {
            let model = lock(&sim.model);
            Ok(returnval(search::by_inventory_path(inv, &model, req.param("inventoryPath").unwrap_or_default())))
        }
        "FindByUuid" => {
            let (vm_search, instance) =
                (req.param("vmSearch") == Some("true"), req.param("instanceUuid") == Some("true"));
            let model = lock(&sim.model);
            Ok(returnval(search::vm_by_uuid(&model, req.param("uuid").unwrap_or_default(), vm_search, instance)))
        }
        "FindByDatastorePath" => {
            let model = lock(&sim.model);
            Ok(returnval(search::vm_by_datastore_path(&model, req.param("path").unwrap_or_default())))
        }
        "CreateContainerView" => create_container_view(sim, req, &s),
        "DestroyView" => {
            let destroyed = lock(&sim.model).views.destroy(id);
            destroyed.then(String::new).ok_or_else(|| Fault::object_not_found(ty, id))
        }
        "RetrievePropertiesEx" => {
            let max = req.call.child("options").and_then(|o| o.text_of("maxObjects")).and_then(|m| m.parse().ok());
            let mut model = lock(&sim.model);
            let objects = retrieve(&model, sim, &req.call, &s)?;
            let (objects, token) = model.pages.page(objects, max);
            Ok(retrieve_result(&objects, token.as_deref()))
        }
        "ContinueRetrievePropertiesEx" => {
            let objects = lock(&sim.model).pages.next(req.param("token").unwrap_or_default())?;
            Ok(retrieve_result(&objects, None))
        }
        "CancelRetrievePropertiesEx" => {
            lock(&sim.model).pages.cancel(req.param("token").unwrap_or_default());
            Ok(String::new())
        }
        "RetrieveProperties" => {
            let objects = retrieve(&lock(&sim.model), sim, &req.call, &s)?;
            Ok(objects
                .iter()
                .map(|o| o.replacen("<objects>", "<returnval>", 1).replace("</objects>", "</returnval>"))
                .collect())
        }
        "Fetch" => fetch(&lock(&sim.model).world(inv, Some(&s)), ty, id, req.param("prop").unwrap_or_default()),
        "CreateFilter" => {
            let spec = req.call.child("spec").ok_or_else(|| Fault::invalid_argument("spec"))?.clone();
            let mut model = lock(&sim.model);
            let (world, filters) = model.world_and_filters(inv, Some(&s));
            let filter = filters.create(&world, sid, &s.key, spec)?;
            Ok(moref("returnval", "PropertyFilter", &filter))
        }
        "DestroyPropertyFilter" => {
            let destroyed = lock(&sim.model).filters.destroy(id);
            destroyed.then(String::new).ok_or_else(|| Fault::object_not_found(ty, id))
        }
        "WaitForUpdates" => wait_for_updates(sim, sid, &s, req.param("version").unwrap_or_default(), None).await,
        "WaitForUpdatesEx" => {
            let max = req.call.child("options").and_then(|o| o.text_of("maxWaitSeconds")).and_then(|m| m.parse().ok());
            let version = req.param("version").unwrap_or_default();
            wait_for_updates(sim, sid, &s, version, Some(Duration::from_secs(max.unwrap_or(WAIT_CAP.as_secs())))).await
        }
        "RegisterVM_Task" => lifecycle::register_vm(sim, req, &s.user),
        "UnregisterVM" => lifecycle::unregister_vm(sim, req),
        "PowerOnVM_Task" => lifecycle::power_on(sim, req, &s.user),
        "PowerOffVM_Task" => lifecycle::power_off(sim, req, &s.user),
        "Destroy_Task" => lifecycle::destroy(sim, req, &s.user),
        "AcquireTicket" => acquire_ticket(sim, req, sid, soap_action),
        method => Err(Fault::method_not_found(ty, id, method)),
    }
}

/// A SearchIndex answer: the reference, or nothing.
fn returnval(found: Option<Ref>) -> String {
    found.map(|(t, i)| moref("returnval", &t, &i)).unwrap_or_default()
}

fn retrieve(model: &Model, sim: &Sim, call: &Element, session: &Session) -> Result<Vec<String>, Fault> {
    let world = model.world(&sim.inventory, Some(session));
    let mut objects = Vec::new();
    for spec in call.children("specSet") {
        objects.extend(collect(&world, spec, false)?.iter().map(|c| c.to_xml()));
    }
    Ok(objects)
}

fn retrieve_result(objects: &[String], token: Option<&str>) -> String {
    if objects.is_empty() && token.is_none() {
        return String::new();
    }
    let token = token.map(|t| format!("<token>{t}</token>")).unwrap_or_default();
    format!("<returnval>{token}{}</returnval>", objects.concat())
}

fn create_container_view(sim: &Sim, req: &Request, session: &Session) -> Result<String, Fault> {
    let (cty, cid) = req.call.child("container").map(|c| c.moref()).unwrap_or_default();
    let mut model = lock(&sim.model);
    if model.world(&sim.inventory, None).resolve(cty, cid).is_none() {
        return Err(Fault::object_not_found(cty, cid));
    }
    let view = View {
        container: (cty.to_string(), cid.to_string()),
        types: req.call.children("type").map(|t| t.text.trim().to_string()).collect(),
        recursive: req.param("recursive") == Some("true"),
    };
    Ok(moref("returnval", "ContainerView", &model.views.create(&session.key, view)))
}

/// `WaitForUpdates(Ex)`: the next `UpdateSet` of the session's filters, waiting for a change at most `max`
/// (`WaitForUpdatesEx`: no `returnval` when it passes) or [`WAIT_CAP`] (`WaitForUpdates`: an `UpdateSet` with
/// no filter sets).
async fn wait_for_updates(
    sim: &Sim,
    sid: &str,
    session: &Session,
    version: &str,
    max: Option<Duration>,
) -> Result<String, Fault> {
    let deadline = Instant::now() + max.unwrap_or(WAIT_CAP);
    let mut changes = sim.changes.subscribe();
    loop {
        changes.borrow_and_update();
        let update = {
            let mut model = lock(&sim.model);
            let (world, filters) = model.world_and_filters(&sim.inventory, Some(session));
            filters.updates(&world, sid, version)?
        };
        if let Some(xml) = update {
            return Ok(format!("<returnval>{xml}</returnval>"));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(match max {
                Some(_) => String::new(),
                None => format!("<returnval><version>{}</version></returnval>", escape(version)),
            });
        }
        let _ = tokio::time::timeout(left, changes.changed()).await;
    }
}

fn login(sim: &Sim, req: &Request, cookie: &mut Option<String>) -> Result<String, Fault> {
    let user = req.param("userName").unwrap_or_default();
    let password = req.call.child("password").map(|p| p.text.as_str()).unwrap_or_default();
    let id = sim.login(user, password, Api::Soap).ok_or_else(Fault::invalid_login)?;
    let fields = lock(&sim.sessions).get(&id).map(Session::user_session_fields).unwrap_or_default();
    *cookie = Some(set_cookie(&id));
    Ok(format!("<returnval>{fields}</returnval>"))
}

#[cfg(test)]
mod libvirt_tests;
#[cfg(test)]
mod tests;
