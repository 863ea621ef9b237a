//! The simulated inventory: the virtual machines and the shapes of the service content, which differ between
//! a standalone ESXi host and vCenter (well-known managed object ids, `about`, inventory paths).

use crate::soap::escape;

/// Which kind of vSphere endpoint is simulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    Esxi,
    Vcenter,
}

/// The managed object ids every client learns from RetrieveServiceContent.
#[derive(Debug, Clone, Copy)]
pub struct WellKnown {
    pub root_folder: &'static str,
    pub property_collector: &'static str,
    pub view_manager: &'static str,
    pub session_manager: &'static str,
    pub search_index: &'static str,
    /// The datacenter's name, the first element of inventory paths.
    pub datacenter: &'static str,
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
                datacenter: "ha-datacenter",
            },
            Flavour::Vcenter => WellKnown {
                root_folder: "group-d1",
                property_collector: "propertyCollector",
                view_manager: "ViewManager",
                session_manager: "SessionManager",
                search_index: "SearchIndex",
                datacenter: "DC0",
            },
        }
    }
}

/// A virtual machine as the command line describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vm {
    pub name: String,
    pub moid: String,
    /// The BIOS UUID (`config.uuid`), what `FindByUuid` with `vmSearch` matches.
    pub uuid: String,
    pub powered_on: bool,
}

/// A `--vm` option before moids are assigned.
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

/// The VMs and the flavour's shapes.
#[derive(Debug, Clone)]
pub struct Inventory {
    pub flavour: Flavour,
    pub vms: Vec<Vm>,
    /// vCenter's `about.instanceUuid`.
    pub instance_uuid: String,
}

impl Inventory {
    /// Assigns moids (ESXi: 1, 2, …; vCenter: vm-1001, …) and UUIDs (derived from the name) where the specs
    /// leave them out. Names and moids must be unique.
    pub fn new(flavour: Flavour, specs: &[VmSpec]) -> Result<Inventory, String> {
        let mut vms: Vec<Vm> = Vec::new();
        for (i, spec) in specs.iter().enumerate() {
            let moid = spec.moid.clone().unwrap_or_else(|| match flavour {
                Flavour::Esxi => (i + 1).to_string(),
                Flavour::Vcenter => format!("vm-{}", 1001 + i),
            });
            let uuid = spec.uuid.clone().unwrap_or_else(|| uuid_from(&format!("bios:{}", spec.name)));
            if vms.iter().any(|v| v.name == spec.name || v.moid == moid) {
                return Err(format!("VM '{}' (moid {moid}): name or moid given twice", spec.name));
            }
            vms.push(Vm { name: spec.name.clone(), moid, uuid, powered_on: spec.powered_on });
        }
        Ok(Inventory { flavour, vms, instance_uuid: uuid_from("vcenter-instance") })
    }

    pub fn well_known(&self) -> WellKnown {
        self.flavour.well_known()
    }

    pub fn by_moid(&self, moid: &str) -> Option<&Vm> {
        self.vms.iter().find(|v| v.moid == moid)
    }

    /// `DATACENTER/vm/NAME`.
    pub fn by_path(&self, path: &str) -> Option<&Vm> {
        let prefix = format!("{}/vm/", self.well_known().datacenter);
        let name = path.strip_prefix(&prefix)?;
        self.vms.iter().find(|v| v.name == name)
    }

    pub fn by_uuid(&self, uuid: &str) -> Option<&Vm> {
        self.vms.iter().find(|v| v.uuid.eq_ignore_ascii_case(uuid))
    }

    /// The inventory path of a VM, as `FindByInventoryPath` takes it.
    pub fn path_of(&self, vm: &Vm) -> String {
        format!("{}/vm/{}", self.well_known().datacenter, vm.name)
    }

    /// The `returnval` of RetrieveServiceContent (its children, without the element itself).
    pub fn service_content_xml(&self) -> String {
        let w = self.well_known();
        let moref = |tag: &str, ty: &str, id: &str| format!("<{tag} type=\"{ty}\">{}</{tag}>", escape(id));
        let (about_name, full_name, build, product, api_type, os_type) = match self.flavour {
            Flavour::Esxi => {
                ("VMware ESXi", "VMware ESXi 8.0.2 build-22380479", "22380479", "embeddedEsx", "HostAgent", "vmnix-x86")
            }
            Flavour::Vcenter => (
                "VMware vCenter Server",
                "VMware vCenter Server 8.0.2 build-22385739",
                "22385739",
                "vpx",
                "VirtualCenter",
                "linux-x64",
            ),
        };
        let instance_uuid = match self.flavour {
            Flavour::Esxi => String::new(),
            Flavour::Vcenter => format!("<instanceUuid>{}</instanceUuid>", self.instance_uuid),
        };
        [
            moref("rootFolder", "Folder", w.root_folder),
            moref("propertyCollector", "PropertyCollector", w.property_collector),
            moref("viewManager", "ViewManager", w.view_manager),
            format!(
                "<about><name>{about_name}</name><fullName>{full_name}</fullName><vendor>VMware, Inc.</vendor>\
                 <version>8.0.2</version><build>{build}</build><localeVersion>INTL</localeVersion>\
                 <localeBuild>000</localeBuild><osType>{os_type}</osType><productLineId>{product}</productLineId>\
                 <apiType>{api_type}</apiType><apiVersion>8.0.2.0</apiVersion>{instance_uuid}\
                 <licenseProductName>VMware ESX Server</licenseProductName>\
                 <licenseProductVersion>8.0</licenseProductVersion></about>"
            ),
            moref("sessionManager", "SessionManager", w.session_manager),
            moref("searchIndex", "SearchIndex", w.search_index),
        ]
        .concat()
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
    fn moids_paths_and_uuids_per_flavour() {
        let specs = [parse_vm_spec("a").unwrap(), parse_vm_spec("b,moid=77").unwrap()];
        let esx = Inventory::new(Flavour::Esxi, &specs).unwrap();
        assert_eq!(esx.vms[0].moid, "1");
        assert_eq!(esx.by_path("ha-datacenter/vm/b").unwrap().moid, "77");
        assert!(esx.by_path("DC0/vm/b").is_none());
        let vc = Inventory::new(Flavour::Vcenter, &specs).unwrap();
        assert_eq!(vc.vms[0].moid, "vm-1001");
        assert_eq!(vc.path_of(&vc.vms[1]), "DC0/vm/b");
        let uuid = vc.vms[0].uuid.to_ascii_uppercase();
        assert_eq!(vc.by_uuid(&uuid).unwrap().name, "a");
        assert!(vc.service_content_xml().contains("<apiType>VirtualCenter</apiType>"));
        assert!(esx.service_content_xml().contains("<rootFolder type=\"Folder\">ha-folder-root</rootFolder>"));
        let dup = [parse_vm_spec("a").unwrap(), parse_vm_spec("a").unwrap()];
        assert!(Inventory::new(Flavour::Esxi, &dup).is_err());
    }
}
