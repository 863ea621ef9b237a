//! The managed objects the PropertyCollector knows and their properties, typed as a real host writes them: the
//! folders, datacenter, compute resource, host, resource pool and datastores of the inventory, the VMs, tasks,
//! container views and the session manager.

use crate::datastore::Datastore;
use crate::inventory::{uuid_from, Flavour, Inventory};
use crate::sessions::Session;
use crate::soap::moref;
use crate::tasks::{localized_fault, Task, Tasks};
use crate::values::{field, Value};
use crate::views::{View, Views};
use crate::vms::{Registry, Vm};

/// Everything the collector reads, borrowed for one request.
pub struct World<'a> {
    pub inv: &'a Inventory,
    pub vms: &'a Registry,
    pub tasks: &'a Tasks,
    pub views: &'a Views,
    /// The caller's session (`SessionManager.currentSession`).
    pub session: Option<&'a Session>,
}

/// The inventory's folders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Folder {
    Root,
    Vm,
    Host,
    Datastore,
    Network,
}

/// A managed object.
#[derive(Debug, Clone, Copy)]
pub enum Mo<'a> {
    Folder(Folder),
    Datacenter,
    ComputeResource,
    ResourcePool,
    Host,
    Datastore(&'a Datastore),
    Vm(&'a Vm),
    Task(&'a Task),
    View(&'a View),
    SessionManager,
    TaskManager,
}

/// A property's value: set, unset (a valid path with no value, left out of answers), or not a property of
/// the object's type (an InvalidProperty fault).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prop {
    Set(Value),
    Unset,
    Invalid,
}

/// A reference: (type, managed object id).
pub type Ref = (String, String);

fn r(ty: &str, id: &str) -> Ref {
    (ty.to_string(), id.to_string())
}

/// Whether objects of type `actual` are of type `wanted` (the same, or a subtype).
pub fn is_a(actual: &str, wanted: &str) -> bool {
    const ENTITIES: [&str; 8] = [
        "Folder",
        "Datacenter",
        "ComputeResource",
        "ResourcePool",
        "HostSystem",
        "VirtualMachine",
        "Datastore",
        "Network",
    ];
    actual == wanted
        || (wanted == "ManagedEntity" && ENTITIES.contains(&actual))
        || (matches!(wanted, "View" | "ManagedObjectView") && actual == "ContainerView")
        || (wanted == "ExtensibleManagedObject" && (ENTITIES.contains(&actual) || actual == "Task"))
}

impl Mo<'_> {
    pub fn ty(&self) -> &'static str {
        match self {
            Mo::Folder(_) => "Folder",
            Mo::Datacenter => "Datacenter",
            Mo::ComputeResource => "ComputeResource",
            Mo::ResourcePool => "ResourcePool",
            Mo::Host => "HostSystem",
            Mo::Datastore(_) => "Datastore",
            Mo::Vm(_) => "VirtualMachine",
            Mo::Task(_) => "Task",
            Mo::View(_) => "ContainerView",
            Mo::SessionManager => "SessionManager",
            Mo::TaskManager => "TaskManager",
        }
    }
}

/// The properties `all` stands for, per type.
pub fn all_properties(ty: &str) -> &'static [&'static str] {
    match ty {
        "Folder" => &["name", "parent", "childType", "childEntity"],
        "Datacenter" => &["name", "parent", "vmFolder", "hostFolder", "datastoreFolder", "networkFolder", "datastore"],
        "ComputeResource" => &["name", "parent", "host", "resourcePool", "datastore"],
        "ResourcePool" => &["name", "parent", "owner", "vm"],
        "HostSystem" => &["name", "parent", "vm", "datastore", "configManager"],
        "Datastore" => &["name", "parent", "summary.name", "summary.url", "host", "vm"],
        "VirtualMachine" => &["name", "config.name", "config.uuid", "runtime.powerState"],
        "Task" => &["info"],
        "ContainerView" => &["view"],
        "SessionManager" => &["currentSession"],
        "TaskManager" => &["recentTask"],
        _ => &[],
    }
}

/// The CPUID leaves of the host (`hardware.cpuFeature`), bit 31 first, as ESXi writes them: an x86-64 CPU
/// (leaf 0x80000001 has the long mode bit, 29 of edx).
const CPU_FEATURES: [(i32, &str, [&str; 4]); 3] = [
    (
        0,
        "intel",
        [
            "0000:0000:0000:0000:0000:0000:0000:1101",
            "0111:0101:0110:1110:0110:0101:0100:0111",
            "0110:1100:0110:0101:0111:0100:0110:1110",
            "0100:1001:0110:0101:0110:1110:0110:1001",
        ],
    ),
    (
        1,
        "",
        [
            "0000:0000:0000:0000:0000:0110:1010:0001",
            "0000:0000:0000:0001:0000:1000:0000:0000",
            "1000:0010:1001:1000:0010:0010:0000:0011",
            "0000:1111:1000:1011:1111:1011:1111:1111",
        ],
    ),
    (
        -2147483647,
        "",
        [
            "0000:0000:0000:0000:0000:0000:0000:0000",
            "0000:0000:0000:0000:0000:0000:0000:0000",
            "0000:0000:0000:0000:0000:0000:0000:0001",
            "0010:1000:0001:0000:0000:1000:0000:0000",
        ],
    ),
];

impl<'a> World<'a> {
    /// The object a reference names.
    pub fn resolve(&self, ty: &str, id: &str) -> Option<Mo<'a>> {
        let w = self.inv.well_known();
        let folder = |f: Folder, want: &str| (id == want).then_some(Mo::Folder(f));
        match ty {
            "Folder" => folder(Folder::Root, w.root_folder)
                .or_else(|| folder(Folder::Vm, w.vm_folder))
                .or_else(|| folder(Folder::Host, w.host_folder))
                .or_else(|| folder(Folder::Datastore, w.datastore_folder))
                .or_else(|| folder(Folder::Network, w.network_folder)),
            "Datacenter" => (id == w.datacenter_id).then_some(Mo::Datacenter),
            "ComputeResource" => (id == w.compute_resource).then_some(Mo::ComputeResource),
            "ResourcePool" => (id == w.resource_pool).then_some(Mo::ResourcePool),
            "HostSystem" => (id == w.host).then_some(Mo::Host),
            "Datastore" => self.inv.datastores.by_uuid(id).map(Mo::Datastore),
            "VirtualMachine" => self.vms.by_moid(id).map(Mo::Vm),
            "Task" => self.tasks.get(id).map(Mo::Task),
            "ContainerView" => self.views.get(id).map(Mo::View),
            "SessionManager" => (id == w.session_manager).then_some(Mo::SessionManager),
            "TaskManager" => (id == w.task_manager).then_some(Mo::TaskManager),
            _ => None,
        }
    }

    fn vm_refs(&self) -> Vec<Ref> {
        self.vms.vms.iter().map(|v| r("VirtualMachine", &v.moid)).collect()
    }

    fn datastore_refs(&self) -> Vec<Ref> {
        self.inv.datastores.list.iter().map(|d| r("Datastore", &d.uuid)).collect()
    }

    /// The value of a property that holds references (one or a list), for traversal; `None` for other
    /// properties.
    pub fn references(&self, mo: &Mo<'a>, path: &str) -> Option<Vec<Ref>> {
        let w = self.inv.well_known();
        let one = |ty: &str, id: &str| Some(vec![r(ty, id)]);
        match (mo, path) {
            (Mo::Folder(Folder::Root), "parent") => Some(Vec::new()),
            (Mo::Folder(_), "parent") => one("Datacenter", w.datacenter_id),
            (Mo::Folder(Folder::Root), "childEntity") => one("Datacenter", w.datacenter_id),
            (Mo::Folder(Folder::Vm), "childEntity") => Some(self.vm_refs()),
            (Mo::Folder(Folder::Host), "childEntity") => one("ComputeResource", w.compute_resource),
            (Mo::Folder(Folder::Datastore), "childEntity") => Some(self.datastore_refs()),
            (Mo::Folder(Folder::Network), "childEntity") => Some(Vec::new()),
            (Mo::Datacenter, "parent") => one("Folder", w.root_folder),
            (Mo::Datacenter, "vmFolder") => one("Folder", w.vm_folder),
            (Mo::Datacenter, "hostFolder") => one("Folder", w.host_folder),
            (Mo::Datacenter, "datastoreFolder") => one("Folder", w.datastore_folder),
            (Mo::Datacenter, "networkFolder") => one("Folder", w.network_folder),
            (Mo::Datacenter | Mo::ComputeResource | Mo::Host, "datastore") => Some(self.datastore_refs()),
            (Mo::Datacenter | Mo::ComputeResource | Mo::Host, "network") => Some(Vec::new()),
            (Mo::ComputeResource, "parent") => one("Folder", w.host_folder),
            (Mo::ComputeResource, "host") => one("HostSystem", w.host),
            (Mo::ComputeResource, "resourcePool") => one("ResourcePool", w.resource_pool),
            (Mo::ResourcePool, "parent" | "owner") => one("ComputeResource", w.compute_resource),
            (Mo::ResourcePool, "vm") => Some(self.vm_refs()),
            (Mo::ResourcePool, "resourcePool") => Some(Vec::new()),
            (Mo::Host, "parent") => one("ComputeResource", w.compute_resource),
            (Mo::Host, "vm") => Some(self.vm_refs()),
            (Mo::Datastore(_), "parent") => one("Folder", w.datastore_folder),
            (Mo::Datastore(d), "vm") => Some(
                self.vms
                    .vms
                    .iter()
                    .filter(|v| v.vmx.as_ref().is_some_and(|p| p.datastore == d.name))
                    .map(|v| r("VirtualMachine", &v.moid))
                    .collect(),
            ),
            (Mo::Vm(_), "parent") => one("Folder", w.vm_folder),
            (Mo::Vm(_), "resourcePool") => one("ResourcePool", w.resource_pool),
            (Mo::Vm(_), "runtime.host") => one("HostSystem", w.host),
            (Mo::Vm(vm), "datastore") => Some(
                vm.vmx
                    .as_ref()
                    .and_then(|p| self.inv.datastores.by_name(&p.datastore))
                    .map(|d| r("Datastore", &d.uuid))
                    .into_iter()
                    .collect(),
            ),
            (Mo::Task(t), "info.entity") => one(t.origin.entity.0, &t.origin.entity.1),
            (Mo::View(v), "view") => Some(v.contents(self)),
            (Mo::View(v), "container") => Some(vec![v.container.clone()]),
            (Mo::TaskManager, "recentTask") => Some(self.tasks.all().map(|t| r("Task", &t.id)).collect()),
            (Mo::Vm(vm), "recentTask") => {
                Some(self.tasks.recent_for("VirtualMachine", &vm.moid).map(|t| r("Task", &t.id)).collect())
            }
            (_, "recentTask") => Some(Vec::new()),
            _ => None,
        }
    }

    /// The value of a property.
    pub fn property(&self, mo: &Mo<'a>, path: &str) -> Prop {
        if let Some(refs) = self.references(mo, path) {
            return match (refs.as_slice(), single_valued(mo, path)) {
                ([(t, i)], true) => Prop::Set(Value::moref(t, i)),
                (_, true) => Prop::Unset,
                (_, false) => Prop::Set(Value::array(
                    "ManagedObjectReference",
                    &refs.iter().map(|(t, i)| Value::moref(t, i)).collect::<Vec<_>>(),
                )),
            };
        }
        if path == "name" {
            return Prop::Set(Value::string(&self.name_of(mo)));
        }
        if matches!(path, "overallStatus" | "configStatus") && is_a(mo.ty(), "ManagedEntity") {
            return Prop::Set(Value::enumeration("ManagedEntityStatus", "green"));
        }
        match mo {
            Mo::Folder(f) => folder_property(*f, path),
            Mo::Host => self.host_property(path),
            Mo::Datastore(d) => self.datastore_property(d, path),
            Mo::Vm(vm) => vm_property(vm, path),
            Mo::Task(t) => task_property(t, path),
            Mo::View(v) => match path {
                "type" => {
                    Prop::Set(Value::array("string", &v.types.iter().map(|t| Value::string(t)).collect::<Vec<_>>()))
                }
                "recursive" => Prop::Set(Value::boolean(v.recursive)),
                _ => Prop::Invalid,
            },
            Mo::SessionManager => match (path, self.session) {
                ("currentSession", Some(s)) => Prop::Set(Value::object("UserSession", s.user_session_fields())),
                ("currentSession", None) => Prop::Unset,
                _ => Prop::Invalid,
            },
            Mo::Datacenter | Mo::ComputeResource | Mo::ResourcePool | Mo::TaskManager => Prop::Invalid,
        }
    }

    fn name_of(&self, mo: &Mo<'a>) -> String {
        match mo {
            Mo::Folder(Folder::Root) => self.inv.well_known().root_folder,
            Mo::Folder(Folder::Vm) => "vm",
            Mo::Folder(Folder::Host) => "host",
            Mo::Folder(Folder::Datastore) => "datastore",
            Mo::Folder(Folder::Network) => "network",
            Mo::Datacenter => self.inv.well_known().datacenter,
            Mo::ComputeResource | Mo::Host => &self.inv.host_name,
            Mo::ResourcePool => "Resources",
            Mo::Datastore(d) => &d.name,
            Mo::Vm(vm) => &vm.name,
            Mo::Task(t) => t.origin.method,
            Mo::View(_) => "",
            Mo::SessionManager => "SessionManager",
            Mo::TaskManager => "TaskManager",
        }
        .to_string()
    }

    fn host_property(&self, path: &str) -> Prop {
        Prop::Set(match path {
            "configManager" => Value::object("HostConfigManager", host_config_manager()),
            "runtime.inMaintenanceMode" => Value::boolean(false),
            "runtime.connectionState" => Value::enumeration("HostSystemConnectionState", "connected"),
            "runtime.powerState" => Value::enumeration("HostSystemPowerState", "poweredOn"),
            "summary.managementServerIp" => match self.inv.flavour {
                Flavour::Esxi => return Prop::Unset,
                Flavour::Vcenter => Value::string("127.0.0.1"),
            },
            "hardware.systemInfo.uuid" => Value::string(&uuid_from(&format!("host:{}", self.inv.host_name))),
            "hardware.cpuFeature" => Value::array("HostCpuIdInfo", &cpu_features()),
            "capability.maxSupportedVcpus" => Value::int(128),
            _ => return Prop::Invalid,
        })
    }

    fn datastore_property(&self, d: &Datastore, path: &str) -> Prop {
        Prop::Set(match path {
            "summary.name" => Value::string(&d.name),
            "summary.url" => Value::string(&d.url()),
            "summary.type" => Value::string("VMFS"),
            "summary.accessible" => Value::boolean(true),
            "browser" => Value::moref("HostDatastoreBrowser", &format!("ha-host-datastorebrowser-{}", d.uuid)),
            "host" => {
                let mount = format!(
                    "{}<mountInfo>{}<accessMode>readWrite</accessMode><accessible>true</accessible></mountInfo>",
                    moref("key", "HostSystem", self.inv.well_known().host),
                    field("path", &d.mount_path()),
                );
                Value::array("DatastoreHostMount", &[Value::object("DatastoreHostMount", mount)])
            }
            _ => return Prop::Invalid,
        })
    }
}

/// Whether a reference property holds one reference rather than a list (`ArrayOfManagedObjectReference`).
fn single_valued(mo: &Mo, path: &str) -> bool {
    matches!(
        (mo, path),
        (_, "parent" | "runtime.host" | "container" | "info.entity")
            | (Mo::Datacenter, "vmFolder" | "hostFolder" | "datastoreFolder" | "networkFolder")
            | (Mo::ComputeResource | Mo::Vm(_), "resourcePool")
            | (Mo::ResourcePool, "owner")
    )
}

fn folder_property(f: Folder, path: &str) -> Prop {
    let types: &[&str] = match f {
        Folder::Root => &["Datacenter", "Folder"],
        Folder::Vm => &["Folder", "VirtualMachine", "VirtualApp"],
        Folder::Host => &["Folder", "ComputeResource"],
        Folder::Datastore => &["Folder", "Datastore", "StoragePod"],
        Folder::Network => &["Folder", "Network", "DistributedVirtualSwitch"],
    };
    match path {
        "childType" => Prop::Set(Value::array("string", &types.iter().map(|t| Value::string(t)).collect::<Vec<_>>())),
        _ => Prop::Invalid,
    }
}

fn vm_property(vm: &Vm, path: &str) -> Prop {
    let s = &vm.settings;
    Prop::Set(match path {
        "config.name" => Value::string(&vm.name),
        "config.uuid" => Value::string(&vm.uuid),
        "config.template" => Value::boolean(false),
        "config.files.vmPathName" | "summary.config.vmPathName" => Value::string(&vm.vm_path_name()),
        "config.hardware.memoryMB" => Value::int(i32::try_from(s.memory_mb).unwrap_or(i32::MAX)),
        "config.hardware.numCPU" => Value::int(i32::try_from(s.num_cpus).unwrap_or(i32::MAX)),
        "config.extraConfig" => Value::array(
            "OptionValue",
            &s.guestinfo
                .iter()
                .map(|(k, v)| {
                    Value::object("OptionValue", format!("{}{}", field("key", k), Value::string(v).element("value")))
                })
                .collect::<Vec<_>>(),
        ),
        "runtime.powerState" | "summary.runtime.powerState" => {
            Value::enumeration("VirtualMachinePowerState", if vm.powered_on { "poweredOn" } else { "poweredOff" })
        }
        "runtime.connectionState" => Value::enumeration("VirtualMachineConnectionState", "connected"),
        "runtime.question" | "snapshot" | "snapshot.rootSnapshotList" | "snapshot.currentSnapshot" => {
            return Prop::Unset
        }
        _ => return Prop::Invalid,
    })
}

fn task_property(t: &Task, path: &str) -> Prop {
    Prop::Set(match path {
        "info" => Value::object("TaskInfo", t.info_xml()),
        "info.key" => Value::string(&t.id),
        "info.name" => Value::string(t.origin.method),
        "info.descriptionId" => Value::string(t.origin.description_id),
        "info.entityName" => Value::string(&t.origin.entity_name),
        "info.state" => Value::enumeration("TaskInfoState", t.state.as_str()),
        "info.cancelled" | "info.cancelable" => Value::boolean(false),
        "info.error" => match &t.error {
            Some(f) => Value::object("LocalizedMethodFault", localized_fault(f)),
            None => return Prop::Unset,
        },
        "info.result" => match &t.result {
            Some(v) => v.clone(),
            None => return Prop::Unset,
        },
        "info.progress" => return Prop::Unset,
        _ => return Prop::Invalid,
    })
}

/// ESXi's HostConfigManager references.
fn host_config_manager() -> String {
    [
        ("cpuScheduler", "HostCpuSchedulerSystem", "cpuSchedulerSystem"),
        ("datastoreSystem", "HostDatastoreSystem", "ha-datastoresystem"),
        ("memoryManager", "HostMemorySystem", "memoryManagerSystem"),
        ("storageSystem", "HostStorageSystem", "storageSystem"),
        ("networkSystem", "HostNetworkSystem", "networkSystem"),
        ("vmotionSystem", "HostVMotionSystem", "ha-vmotion-system"),
        ("serviceSystem", "HostServiceSystem", "serviceSystem"),
        ("firewallSystem", "HostFirewallSystem", "firewallSystem"),
        ("advancedOption", "OptionManager", "ha-adv-options"),
        ("diagnosticSystem", "HostDiagnosticSystem", "diagnosticsystem"),
        ("autoStartManager", "HostAutoStartManager", "ha-autostart-mgr"),
        ("snmpSystem", "HostSnmpSystem", "ha-snmp-agent"),
        ("dateTimeSystem", "HostDateTimeSystem", "dateTimeSystem"),
        ("patchManager", "HostPatchManager", "ha-host-patch-manager"),
        ("bootDeviceSystem", "HostBootDeviceSystem", "bootDeviceSystem"),
        ("firmwareSystem", "HostFirmwareSystem", "ha-firmwareSystem"),
        ("healthStatusSystem", "HostHealthStatusSystem", "healthStatusSystem"),
    ]
    .iter()
    .map(|(tag, ty, id)| moref(tag, ty, id))
    .collect()
}

fn cpu_features() -> Vec<Value> {
    CPU_FEATURES
        .iter()
        .map(|(level, vendor, regs)| {
            let vendor = if vendor.is_empty() { String::new() } else { field("vendor", vendor) };
            let regs: String = ["eax", "ebx", "ecx", "edx"].iter().zip(regs).map(|(n, v)| field(n, v)).collect();
            Value::object("HostCpuIdInfo", format!("{}{vendor}{regs}", field("level", &level.to_string())))
        })
        .collect()
}
