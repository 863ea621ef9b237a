//! Task objects: what the `…_Task` methods return. Each has a `TaskInfo` (`info`) that clients read through
//! the PropertyCollector or wait on with a property filter; it goes from running to success (with a result) or
//! error (with the fault). Finished tasks stay visible for a while, as in vSphere's `recentTask` lists.

use std::time::{Duration, SystemTime};

use crate::inventory::Flavour;
use crate::soap::{escape, moref, Fault};
use crate::values::{field, iso8601, Value};

/// How long finished tasks are kept (and listed in `recentTask`).
const KEEP_FINISHED: Duration = Duration::from_secs(600);

/// `TaskInfoState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Running,
    Success,
    Error,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Success => "success",
            State::Error => "error",
        }
    }
}

/// What a task works on, and as whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The method, e.g. `PowerOnVM_Task` (`info.name`).
    pub method: &'static str,
    /// e.g. `VirtualMachine.powerOn` (`info.descriptionId`).
    pub description_id: &'static str,
    /// The entity's type and managed object id.
    pub entity: (&'static str, String),
    pub entity_name: String,
    pub user: String,
}

#[derive(Debug, Clone)]
pub struct Task {
    pub id: String,
    pub origin: Origin,
    pub state: State,
    pub error: Option<Fault>,
    pub result: Option<Value>,
    queued: SystemTime,
    completed: Option<SystemTime>,
    event_chain_id: u32,
}

impl Task {
    /// The `TaskInfo` fields, in the order of the WSDL.
    pub fn info_xml(&self) -> String {
        let o = &self.origin;
        let mut xml = [
            field("key", &self.id),
            moref("task", "Task", &self.id),
            field("name", o.method),
            field("descriptionId", o.description_id),
            moref("entity", o.entity.0, &o.entity.1),
            field("entityName", &o.entity_name),
            field("state", self.state.as_str()),
            field("cancelled", "false"),
            field("cancelable", "false"),
        ]
        .concat();
        if let Some(f) = &self.error {
            xml.push_str(&format!("<error>{}</error>", localized_fault(f)));
        }
        if let Some(r) = &self.result {
            xml.push_str(&r.element("result"));
        }
        xml.push_str(&format!("<reason xsi:type=\"TaskReasonUser\"><userName>{}</userName></reason>", escape(&o.user)));
        let queued = iso8601(self.queued);
        xml.push_str(&format!("<queueTime>{queued}</queueTime><startTime>{queued}</startTime>"));
        if let Some(done) = self.completed {
            xml.push_str(&format!("<completeTime>{}</completeTime>", iso8601(done)));
        }
        xml.push_str(&format!("<eventChainId>{}</eventChainId>", self.event_chain_id));
        xml
    }
}

/// A `LocalizedMethodFault`'s fields: the fault object (typed) and its message.
pub fn localized_fault(f: &Fault) -> String {
    format!(
        "<fault xsi:type=\"{}\">{}</fault><localizedMessage>{}</localizedMessage>",
        f.kind,
        f.fields,
        escape(&f.message)
    )
}

/// All tasks still kept.
#[derive(Debug)]
pub struct Tasks {
    flavour: Flavour,
    list: Vec<Task>,
    counter: u32,
}

impl Tasks {
    pub fn new(flavour: Flavour) -> Tasks {
        Tasks { flavour, list: Vec::new(), counter: 0 }
    }

    /// A new running task; returns its managed object id (`haTask-1-vim.VirtualMachine.powerOn-…` on ESXi,
    /// `task-N` on vCenter).
    pub fn start(&mut self, origin: Origin, now: SystemTime) -> String {
        self.list.retain(|t| !t.completed.is_some_and(|c| c + KEEP_FINISHED <= now));
        self.counter += 1;
        let id = match self.flavour {
            Flavour::Esxi => {
                let op = origin.description_id.split_once('.').map(|(_, op)| op).unwrap_or(origin.description_id);
                format!("haTask-{}-vim.{}.{op}-{}", origin.entity.1, origin.entity.0, 100 + self.counter)
            }
            Flavour::Vcenter => format!("task-{}", 100 + self.counter),
        };
        self.list.push(Task {
            id: id.clone(),
            origin,
            state: State::Running,
            error: None,
            result: None,
            queued: now,
            completed: None,
            event_chain_id: 1000 + self.counter,
        });
        id
    }

    /// Ends a task with a result (or none) or a fault.
    pub fn finish(&mut self, id: &str, outcome: Result<Option<Value>, Fault>, now: SystemTime) {
        let Some(t) = self.list.iter_mut().find(|t| t.id == id) else { return };
        match outcome {
            Ok(result) => {
                t.state = State::Success;
                t.result = result;
            }
            Err(fault) => {
                t.state = State::Error;
                t.error = Some(fault);
            }
        }
        t.completed = Some(now);
    }

    pub fn get(&self, id: &str) -> Option<&Task> {
        self.list.iter().find(|t| t.id == id)
    }

    /// The tasks on an entity (`recentTask`), oldest first.
    pub fn recent_for<'a>(&'a self, ty: &'a str, id: &'a str) -> impl Iterator<Item = &'a Task> + 'a {
        self.list.iter().filter(move |t| t.origin.entity.0 == ty && t.origin.entity.1 == id)
    }

    /// Every kept task (`TaskManager.recentTask`).
    pub fn all(&self) -> impl Iterator<Item = &Task> {
        self.list.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn power_on(vm: &str) -> Origin {
        Origin {
            method: "PowerOnVM_Task",
            description_id: "VirtualMachine.powerOn",
            entity: ("VirtualMachine", vm.to_string()),
            entity_name: "sut".into(),
            user: "root".into(),
        }
    }

    #[test]
    fn lifecycle_and_info() {
        let mut tasks = Tasks::new(Flavour::Esxi);
        let t0 = UNIX_EPOCH + Duration::from_secs(1_767_225_600);
        let id = tasks.start(power_on("1"), t0);
        assert_eq!(id, "haTask-1-vim.VirtualMachine.powerOn-101");
        let info = tasks.get(&id).unwrap().info_xml();
        assert!(info.starts_with(
            "<key>haTask-1-vim.VirtualMachine.powerOn-101</key><task type=\"Task\">haTask-1-vim.VirtualMachine.\
             powerOn-101</task><name>PowerOnVM_Task</name><descriptionId>VirtualMachine.powerOn</descriptionId>\
             <entity type=\"VirtualMachine\">1</entity><entityName>sut</entityName><state>running</state>"
        ));
        assert!(info.contains("<queueTime>2026-01-01T00:00:00.000Z</queueTime>") && !info.contains("completeTime"));
        tasks.finish(&id, Err(Fault::new("FileNotFound", "File [ds] a.vmdk was not found")), t0);
        let info = tasks.get(&id).unwrap().info_xml();
        assert!(info.contains(
            "<state>error</state><cancelled>false</cancelled><cancelable>false</cancelable><error><fault \
             xsi:type=\"FileNotFound\"></fault><localizedMessage>File [ds] a.vmdk was not found</localizedMessage>\
             </error>"
        ));
        let ok = tasks.start(power_on("2"), t0);
        tasks.finish(&ok, Ok(Some(Value::moref("VirtualMachine", "2"))), t0);
        assert!(tasks.get(&ok).unwrap().info_xml().contains(
            "<state>success</state><cancelled>false</cancelled><cancelable>false</cancelable><result \
             xsi:type=\"ManagedObjectReference\" type=\"VirtualMachine\">2</result>"
        ));
        assert_eq!(tasks.recent_for("VirtualMachine", "1").count(), 1);
        let later = tasks.start(power_on("1"), t0 + KEEP_FINISHED);
        assert!(tasks.get(&id).is_none(), "finished tasks are dropped after a while");
        assert_eq!(tasks.all().count(), 1);
        assert_eq!(later, "haTask-1-vim.VirtualMachine.powerOn-103");
        assert_eq!(Tasks::new(Flavour::Vcenter).start(power_on("vm-1"), t0), "task-101");
    }
}
