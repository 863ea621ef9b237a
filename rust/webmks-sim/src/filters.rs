//! Property filters (`CreateFilter`, `DestroyPropertyFilter`) and the updates `WaitForUpdates(Ex)` reports for
//! them: what libvirt uses to wait for a task (`info.state` of the Task). Each filter remembers what it last
//! reported; an update lists objects that entered the filter, changed, or left it.

use std::collections::HashMap;

use crate::collector::{collect, Content};
use crate::objects::World;
use crate::sessions::random_hex;
use crate::soap::{escape, moref, Element, Fault};

#[derive(Debug)]
struct Filter {
    /// The cookie id of the session that made it.
    session: String,
    spec: Element,
    /// What the last update reported (empty before the first).
    reported: Vec<Content>,
}

/// All property filters, and each session's update version.
#[derive(Debug, Default)]
pub struct Filters {
    by_id: HashMap<String, Filter>,
    versions: HashMap<String, u64>,
}

impl Filters {
    /// `CreateFilter` in session `session` (cookie id) with key `session_key`; returns the filter's id.
    pub fn create(&mut self, world: &World, session: &str, session_key: &str, spec: Element) -> Result<String, Fault> {
        collect(world, &spec, false)?;
        let id = format!("session[{session_key}]{}", random_hex(16));
        self.by_id.insert(id.clone(), Filter { session: session.to_string(), spec, reported: Vec::new() });
        Ok(id)
    }

    pub fn destroy(&mut self, id: &str) -> bool {
        self.by_id.remove(id).is_some()
    }

    /// Forgets everything of a session that logged out.
    pub fn drop_session(&mut self, session: &str) {
        self.by_id.retain(|_, f| f.session != session);
        self.versions.remove(session);
    }

    /// The `UpdateSet` fields (`version`, `filterSet`…) of what changed for the session's filters since the
    /// update `version` (`""`: since the filters were made), or `None` when nothing did.
    pub fn updates(&mut self, world: &World, session: &str, version: &str) -> Result<Option<String>, Fault> {
        let current = self.versions.get(session).copied().unwrap_or(0);
        let restart = version.is_empty() || version.parse::<u64>().ok() != Some(current);
        let mut ids: Vec<&String> = self.by_id.iter().filter(|(_, f)| f.session == session).map(|(id, _)| id).collect();
        ids.sort();
        let ids: Vec<String> = ids.into_iter().cloned().collect();
        let mut filter_sets = String::new();
        for id in ids {
            let filter = self.by_id.get_mut(&id).expect("the id was just listed");
            if restart {
                filter.reported.clear();
            }
            let now = collect(world, &filter.spec, true)?;
            let objects = object_updates(&filter.reported, &now);
            if !objects.is_empty() {
                filter_sets
                    .push_str(&format!("<filterSet>{}{objects}</filterSet>", moref("filter", "PropertyFilter", &id)));
            }
            filter.reported = now;
        }
        if filter_sets.is_empty() && !restart {
            return Ok(None);
        }
        let next = current + 1;
        self.versions.insert(session.to_string(), next);
        Ok(Some(format!("<version>{next}</version>{filter_sets}")))
    }
}

/// The `objectSet` elements (`ObjectUpdate`) that turn `before` into `after`.
fn object_updates(before: &[Content], after: &[Content]) -> String {
    let mut xml = String::new();
    for c in after {
        let old = before.iter().find(|b| b.obj == c.obj);
        let changes: String = c
            .props
            .iter()
            .filter(|(name, value)| !old.is_some_and(|o| o.props.iter().any(|(n, v)| n == name && v == value)))
            .map(|(name, value)| {
                format!("<changeSet><name>{}</name><op>assign</op>{}</changeSet>", escape(name), value.element("val"))
            })
            .chain(old.into_iter().flat_map(|o| {
                o.props
                    .iter()
                    .filter(|(name, _)| !c.props.iter().any(|(n, _)| n == name))
                    .map(|(name, _)| format!("<changeSet><name>{}</name><op>assign</op></changeSet>", escape(name)))
            }))
            .collect();
        let kind = if old.is_some() { "modify" } else { "enter" };
        if old.is_none() || !changes.is_empty() {
            xml.push_str(&format!(
                "<objectSet><kind>{kind}</kind>{}{changes}</objectSet>",
                moref("obj", &c.obj.0, &c.obj.1)
            ));
        }
    }
    for b in before.iter().filter(|b| !after.iter().any(|a| a.obj == b.obj)) {
        xml.push_str(&format!("<objectSet><kind>leave</kind>{}</objectSet>", moref("obj", &b.obj.0, &b.obj.1)));
    }
    xml
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datastore::Datastores;
    use crate::inventory::{Flavour, Inventory};
    use crate::soap::Request;
    use crate::tasks::{Origin, Tasks};
    use crate::version::Release;
    use crate::views::Views;
    use crate::vms::Registry;
    use std::time::SystemTime;

    /// libvirt's esxVI_WaitForTaskCompletion: a filter on the task's info.state, WaitForUpdates until it ends.
    #[test]
    fn waiting_for_a_task() {
        let inv = Inventory::new(Flavour::Esxi, Release::V7_0, "esx", Datastores::default());
        let vms = Registry::new(Flavour::Esxi, &[]).unwrap();
        let views = Views::default();
        let mut tasks = Tasks::new(Flavour::Esxi);
        let origin = Origin {
            method: "PowerOnVM_Task",
            description_id: "VirtualMachine.powerOn",
            entity: ("VirtualMachine", "1".into()),
            entity_name: "vm".into(),
            user: "root".into(),
        };
        let task = tasks.start(origin, SystemTime::now());
        let xml = format!(
            r#"<Envelope><Body><CreateFilter><_this type="PropertyCollector">ha-property-collector</_this><spec>
            <propSet><type>Task</type><pathSet>info.state</pathSet></propSet>
            <objectSet><obj type="Task">{task}</obj><skip>false</skip></objectSet></spec>
            <partialUpdates>true</partialUpdates></CreateFilter></Body></Envelope>"#
        );
        let spec = Request::parse(xml.as_bytes()).unwrap().call.child("spec").unwrap().clone();
        let mut filters = Filters::default();
        fn world<'a>(inv: &'a Inventory, vms: &'a Registry, views: &'a Views, tasks: &'a Tasks) -> World<'a> {
            World { inv, vms, tasks, views, session: None }
        }
        let id = filters.create(&world(&inv, &vms, &views, &tasks), "s1", "52ab", spec).unwrap();
        assert!(id.starts_with("session[52ab]"));

        let first = filters.updates(&world(&inv, &vms, &views, &tasks), "s1", "").unwrap().unwrap();
        assert_eq!(
            first,
            format!(
                "<version>1</version><filterSet><filter type=\"PropertyFilter\">{id}</filter><objectSet><kind>enter</kind>\
                 <obj type=\"Task\">{task}</obj><changeSet><name>info.state</name><op>assign</op><val \
                 xsi:type=\"TaskInfoState\">running</val></changeSet></objectSet></filterSet>"
            )
        );
        assert_eq!(filters.updates(&world(&inv, &vms, &views, &tasks), "s1", "1").unwrap(), None, "nothing changed");
        assert_eq!(
            filters.updates(&world(&inv, &vms, &views, &tasks), "s2", "").unwrap().as_deref(),
            Some("<version>1</version>")
        );
        tasks.finish(&task, Ok(None), SystemTime::now());
        let done = filters.updates(&world(&inv, &vms, &views, &tasks), "s1", "1").unwrap().unwrap();
        assert!(done.starts_with("<version>2</version>"), "{done}");
        assert!(done.contains("<kind>modify</kind>") && done.contains(">success</val>"), "{done}");
        assert!(filters.destroy(&id));
        assert!(!filters.destroy(&id));
        let bad = Request::parse(b"<Envelope><Body><spec><propSet><type>Task</type></propSet><objectSet><obj type=\"Task\">nope</obj></objectSet></spec></Body></Envelope>").unwrap().call;
        assert_eq!(
            filters.create(&world(&inv, &vms, &views, &tasks), "s1", "k", bad).unwrap_err().kind,
            "ManagedObjectNotFound"
        );
    }
}
