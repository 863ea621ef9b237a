//! The fixed part of the simulated inventory: a standalone ESXi host (or vCenter with one host) with its
//! well-known managed object ids, `about`, datastores and inventory paths. The VMs, which come and go, are in
//! [`crate::vms`].

use crate::datastore::Datastores;
use crate::soap::moref;
use crate::version::{About, Release};

/// Which kind of vSphere endpoint is simulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    Esxi,
    Vcenter,
}

/// The managed object ids of the inventory's fixed objects and services.
#[derive(Debug, Clone, Copy)]
pub struct WellKnown {
    pub root_folder: &'static str,
    pub property_collector: &'static str,
    pub view_manager: &'static str,
    pub session_manager: &'static str,
    pub search_index: &'static str,
    pub task_manager: &'static str,
    /// The datacenter's managed object id.
    pub datacenter_id: &'static str,
    /// The datacenter's name, the first element of inventory paths.
    pub datacenter: &'static str,
    pub vm_folder: &'static str,
    pub host_folder: &'static str,
    pub datastore_folder: &'static str,
    pub network_folder: &'static str,
    pub compute_resource: &'static str,
    pub host: &'static str,
    pub resource_pool: &'static str,
}

impl Flavour {
    pub fn well_known(self) -> WellKnown {
        match self {
            Flavour::Esxi => WellKnown {
                root_folder: "ha-folder-root",
                property_collector: "ha-property-collector",
                view_manager: "ViewManager",
                session_manager: "ha-sessionmgr",
                search_index: "ha-searchindex",
                task_manager: "ha-taskmgr",
                datacenter_id: "ha-datacenter",
                datacenter: "ha-datacenter",
                vm_folder: "ha-folder-vm",
                host_folder: "ha-folder-host",
                datastore_folder: "ha-folder-datastore",
                network_folder: "ha-folder-network",
                compute_resource: "ha-compute-res",
                host: "ha-host",
                resource_pool: "ha-root-pool",
            },
            Flavour::Vcenter => WellKnown {
                root_folder: "group-d1",
                property_collector: "propertyCollector",
                view_manager: "ViewManager",
                session_manager: "SessionManager",
                search_index: "SearchIndex",
                task_manager: "TaskManager",
                datacenter_id: "datacenter-2",
                datacenter: "DC0",
                vm_folder: "group-v3",
                host_folder: "group-h4",
                datastore_folder: "group-s5",
                network_folder: "group-n6",
                compute_resource: "domain-s7",
                host: "host-8",
                resource_pool: "resgroup-9",
            },
        }
    }
}

/// A VM as the command line describes it (`--vm`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmSpec {
    pub name: String,
    pub moid: Option<String>,
    pub uuid: Option<String>,
    pub powered_on: bool,
}

/// Parses `NAME[,moid=ID][,uuid=BIOS-UUID][,power=on|off]`.
pub fn parse_vm_spec(spec: &str) -> Result<VmSpec, String> {
    let mut parts = spec.split(',');
    let name = parts.next().unwrap_or_default().trim();
    if name.is_empty() || name.contains('=') {
        return Err(format!("VM spec '{spec}' must start with the VM's name"));
    }
    let mut vm = VmSpec { name: name.to_string(), moid: None, uuid: None, powered_on: true };
    for part in parts {
        match part.split_once('=') {
            Some(("moid", v)) if !v.is_empty() => vm.moid = Some(v.to_string()),
            Some(("uuid", v)) if !v.is_empty() => vm.uuid = Some(v.to_ascii_lowercase()),
            Some(("power", "on")) => vm.powered_on = true,
            Some(("power", "off")) => vm.powered_on = false,
            _ => return Err(format!("VM spec '{spec}': unknown or empty field '{part}'")),
        }
    }
    Ok(vm)
}

/// The host, its datastores and the flavour's shapes.
#[derive(Debug, Clone)]
pub struct Inventory {
    pub flavour: Flavour,
    pub release: Release,
    /// The host's name (`HostSystem.name`, also the compute resource's).
    pub host_name: String,
    pub datastores: Datastores,
    /// vCenter's `about.instanceUuid`.
    pub instance_uuid: String,
}

impl Inventory {
    pub fn new(flavour: Flavour, release: Release, host_name: &str, datastores: Datastores) -> Inventory {
        Inventory {
            flavour,
            release,
            host_name: host_name.to_string(),
            datastores,
            instance_uuid: uuid_from("vcenter-instance"),
        }
    }

    pub fn well_known(&self) -> WellKnown {
        self.flavour.well_known()
    }

    /// The product's `about` version fields.
    pub fn about(&self) -> About {
        match self.flavour {
            Flavour::Esxi => self.release.esxi(),
            Flavour::Vcenter => self.release.vcenter(),
        }
    }

    /// The inventory path of a VM, as `FindByInventoryPath` takes it.
    pub fn path_of(&self, vm_name: &str) -> String {
        format!("{}/vm/{}", self.well_known().datacenter, vm_name)
    }

    /// The `returnval` of RetrieveServiceContent (its children, without the element itself).
    pub fn service_content_xml(&self) -> String {
        let w = self.well_known();
        let a = self.about();
        let (name, product, api_type, os_type, license, instance_uuid) = match self.flavour {
            Flavour::Esxi => {
                ("VMware ESXi", "embeddedEsx", "HostAgent", "vmnix-x86", "VMware ESX Server", String::new())
            }
            Flavour::Vcenter => (
                "VMware vCenter Server",
                "vpx",
                "VirtualCenter",
                "linux-x64",
                "VMware VirtualCenter Server",
                format!("<instanceUuid>{}</instanceUuid>", self.instance_uuid),
            ),
        };
        [
            moref("rootFolder", "Folder", w.root_folder),
            moref("propertyCollector", "PropertyCollector", w.property_collector),
            moref("viewManager", "ViewManager", w.view_manager),
            format!(
                "<about><name>{name}</name><fullName>{name} {version} build-{build}</fullName>\
                 <vendor>VMware, Inc.</vendor><version>{version}</version><build>{build}</build>\
                 <localeVersion>INTL</localeVersion><localeBuild>000</localeBuild><osType>{os_type}</osType>\
                 <productLineId>{product}</productLineId><apiType>{api_type}</apiType>\
                 <apiVersion>{api}</apiVersion>{instance_uuid}<licenseProductName>{license}</licenseProductName>\
                 <licenseProductVersion>{license_version}</licenseProductVersion></about>",
                version = a.version,
                build = a.build,
                api = a.api_version,
                license_version = self.release.license_version(),
            ),
            moref("sessionManager", "SessionManager", w.session_manager),
            moref("searchIndex", "SearchIndex", w.search_index),
            moref("taskManager", "TaskManager", w.task_manager),
        ]
        .concat()
    }

    /// `about.fullName`, for the start-up log.
    pub fn full_name(&self) -> String {
        let a = self.about();
        let name = if self.flavour == Flavour::Esxi { "VMware ESXi" } else { "VMware vCenter Server" };
        format!("{name} {} build-{}", a.version, a.build)
    }
}

/// A UUID-shaped string derived from `seed` (stable across runs, so tests can predict it).
pub fn uuid_from(seed: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, seed.as_bytes());
    let h: String = d.as_ref()[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_specs() {
        assert_eq!(
            parse_vm_spec("web,moid=42,power=off,uuid=ABC").unwrap(),
            VmSpec { name: "web".into(), moid: Some("42".into()), uuid: Some("abc".into()), powered_on: false }
        );
        assert!(parse_vm_spec("sut").unwrap().powered_on);
        for bad in ["", "moid=3", "x,colour=red", "x,power=maybe", "x,moid="] {
            assert!(parse_vm_spec(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn about_follows_flavour_and_release() {
        let esx = Inventory::new(Flavour::Esxi, Release::V6_5, "esx", Datastores::default());
        let xml = esx.service_content_xml();
        assert!(xml.contains("<rootFolder type=\"Folder\">ha-folder-root</rootFolder>"));
        assert!(xml.contains("<fullName>VMware ESXi 6.5.0 build-13932383</fullName>"), "{xml}");
        assert!(xml.contains("<apiVersion>6.5</apiVersion>") && xml.contains("<productLineId>embeddedEsx<"));
        assert!(xml.contains("<licenseProductVersion>6.0</licenseProductVersion>"));
        assert!(!xml.contains("instanceUuid"));
        assert_eq!(esx.path_of("a"), "ha-datacenter/vm/a");
        let vc = Inventory::new(Flavour::Vcenter, Release::V8_0, "esx", Datastores::default());
        let xml = vc.service_content_xml();
        assert!(xml.contains("<apiType>VirtualCenter</apiType>") && xml.contains("<apiVersion>8.0.2.0<"));
        assert!(xml.contains("<instanceUuid>"));
        assert_eq!(vc.path_of("a"), "DC0/vm/a");
        assert_eq!(vc.full_name(), "VMware vCenter Server 8.0.2 build-22385739");
    }
}
