//! The registered virtual machines: those of `--vm` (their console is `--vnc`) and those registered from a
//! .vmx in a datastore (their console is their running guest's). Managed object ids are plain integers on ESXi
//! (`1`, `2`, …) and `vm-N` on vCenter, new ones continuing after the highest given.

use std::time::Instant;

use crate::datastore::DatastorePath;
use crate::inventory::{uuid_from, Flavour, VmSpec};
use crate::vmx::RemoteDisplay;

/// What the .vmx says about the hardware and the host-side endpoints (read at registration and again at
/// power-on, since the file may change in between).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VmxSettings {
    pub memory_mb: u32,
    pub num_cpus: u32,
    /// `guestinfo.*` keys with their values.
    pub guestinfo: Vec<(String, String)>,
    /// `RemoteDisplay.vnc.*` when enabled.
    pub remote_display: Option<RemoteDisplay>,
    /// The TCP port of a `serial0` network serial port.
    pub serial_port: Option<u16>,
}

/// A virtual machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vm {
    pub moid: String,
    pub name: String,
    /// The BIOS UUID (`config.uuid`, `uuid.bios`), canonical lowercase form.
    pub uuid: String,
    pub powered_on: bool,
    /// When the last power-on finished (the MKS becomes available a while later). `None` for VMs that were
    /// on from the start.
    pub powered_on_at: Option<Instant>,
    /// The .vmx of a registered VM; `None` for `--vm` VMs.
    pub vmx: Option<DatastorePath>,
    pub settings: VmxSettings,
}

impl Vm {
    /// `config.files.vmPathName`.
    pub fn vm_path_name(&self) -> String {
        match &self.vmx {
            Some(p) => p.to_string(),
            None => format!("[datastore1] {0}/{0}.vmx", self.name),
        }
    }
}

/// All VMs, in registration order.
#[derive(Debug, Clone)]
pub struct Registry {
    pub vms: Vec<Vm>,
    flavour: Flavour,
    next_id: u64,
}

/// The number in a moid (`7` of `7` or `vm-7`).
fn moid_number(moid: &str) -> Option<u64> {
    moid.strip_prefix("vm-").unwrap_or(moid).parse().ok()
}

impl Registry {
    /// The `--vm` VMs: moids assigned where the specs leave them out (ESXi: 1, 2, …; vCenter: vm-1001, …) and
    /// UUIDs derived from the names. Names and moids must be unique.
    pub fn new(flavour: Flavour, specs: &[VmSpec]) -> Result<Registry, String> {
        let first = match flavour {
            Flavour::Esxi => 1,
            Flavour::Vcenter => 1001,
        };
        let mut r = Registry { vms: Vec::new(), flavour, next_id: first };
        for (i, spec) in specs.iter().enumerate() {
            let moid = spec.moid.clone().unwrap_or_else(|| r.moid_for(first + i as u64));
            let uuid = spec.uuid.clone().unwrap_or_else(|| uuid_from(&format!("bios:{}", spec.name)));
            if r.vms.iter().any(|v| v.name == spec.name || v.moid == moid) {
                return Err(format!("VM '{}' (moid {moid}): name or moid given twice", spec.name));
            }
            r.next_id = r.next_id.max(moid_number(&moid).map_or(0, |n| n + 1));
            r.vms.push(Vm {
                moid,
                name: spec.name.clone(),
                uuid,
                powered_on: spec.powered_on,
                powered_on_at: None,
                vmx: None,
                settings: VmxSettings { memory_mb: 256, num_cpus: 1, ..VmxSettings::default() },
            });
        }
        Ok(r)
    }

    fn moid_for(&self, n: u64) -> String {
        match self.flavour {
            Flavour::Esxi => n.to_string(),
            Flavour::Vcenter => format!("vm-{n}"),
        }
    }

    /// Adds a VM registered from `vmx`; returns its new moid.
    pub fn register(&mut self, name: &str, uuid: &str, vmx: DatastorePath, settings: VmxSettings) -> String {
        let moid = self.moid_for(self.next_id);
        self.next_id += 1;
        self.vms.push(Vm {
            moid: moid.clone(),
            name: name.to_string(),
            uuid: uuid.to_string(),
            powered_on: false,
            powered_on_at: None,
            vmx: Some(vmx),
            settings,
        });
        moid
    }

    pub fn unregister(&mut self, moid: &str) -> Option<Vm> {
        let i = self.vms.iter().position(|v| v.moid == moid)?;
        Some(self.vms.remove(i))
    }

    pub fn by_moid(&self, moid: &str) -> Option<&Vm> {
        self.vms.iter().find(|v| v.moid == moid)
    }

    pub fn by_moid_mut(&mut self, moid: &str) -> Option<&mut Vm> {
        self.vms.iter_mut().find(|v| v.moid == moid)
    }

    pub fn by_name(&self, name: &str) -> Option<&Vm> {
        self.vms.iter().find(|v| v.name == name)
    }

    pub fn by_uuid(&self, uuid: &str) -> Option<&Vm> {
        self.vms.iter().find(|v| v.uuid.eq_ignore_ascii_case(uuid))
    }

    pub fn by_vmx(&self, vmx: &DatastorePath) -> Option<&Vm> {
        self.vms.iter().find(|v| v.vmx.as_ref() == Some(vmx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::parse_vm_spec;

    #[test]
    fn moids_continue_after_the_given_ones() {
        let specs = [parse_vm_spec("a").unwrap(), parse_vm_spec("b,moid=77").unwrap()];
        let mut esx = Registry::new(Flavour::Esxi, &specs).unwrap();
        assert_eq!(esx.vms[0].moid, "1");
        assert_eq!(esx.by_name("b").unwrap().moid, "77");
        let vmx = DatastorePath::parse("[ds] c/c.vmx").unwrap();
        let moid = esx.register("c", "4d5f", vmx.clone(), VmxSettings::default());
        assert_eq!(moid, "78");
        assert_eq!(esx.by_vmx(&vmx).unwrap().name, "c");
        assert_eq!(esx.by_uuid("4D5F").unwrap().moid, "78");
        assert!(!esx.by_moid("78").unwrap().powered_on);
        assert_eq!(esx.by_moid("78").unwrap().vm_path_name(), "[ds] c/c.vmx");
        assert_eq!(esx.by_moid("1").unwrap().vm_path_name(), "[datastore1] a/a.vmx");
        assert_eq!(esx.unregister("78").unwrap().name, "c");
        assert_eq!(esx.register("d", "u", vmx, VmxSettings::default()), "79", "moids are not reused");

        let vc = Registry::new(Flavour::Vcenter, &specs[..1]).unwrap();
        assert_eq!(vc.vms[0].moid, "vm-1001");
        let empty = Registry::new(Flavour::Esxi, &[]).unwrap();
        assert_eq!(empty.next_id, 1);
        let dup = [parse_vm_spec("a").unwrap(), parse_vm_spec("a").unwrap()];
        assert!(Registry::new(Flavour::Esxi, &dup).is_err());
    }
}
