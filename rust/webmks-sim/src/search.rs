//! The SearchIndex: `FindByInventoryPath` (`DATACENTER/vm/NAME`, `DATACENTER/host/HOST`, …),
//! `FindByUuid` (BIOS UUID of a VM) and `FindByDatastorePath` (a VM by its .vmx).

use crate::datastore::DatastorePath;
use crate::inventory::Inventory;
use crate::objects::Ref;
use crate::sim::Model;

fn r(ty: &str, id: &str) -> Option<Ref> {
    Some((ty.to_string(), id.to_string()))
}

/// The object at an inventory path: the datacenter, its four folders and what is in them (VMs by name, the
/// host's compute resource, the host under it and its `Resources` pool, datastores by name).
pub fn by_inventory_path(inv: &Inventory, model: &Model, path: &str) -> Option<Ref> {
    let w = inv.well_known();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    if parts.first() != Some(&w.datacenter) {
        return None;
    }
    let host = inv.host_name.as_str();
    match parts[1..] {
        [] => r("Datacenter", w.datacenter_id),
        ["vm"] => r("Folder", w.vm_folder),
        ["vm", name] => model.vms.by_name(name).and_then(|vm| r("VirtualMachine", &vm.moid)),
        ["host"] => r("Folder", w.host_folder),
        ["host", h] if h == host => r("ComputeResource", w.compute_resource),
        ["host", h, x] if h == host && x == host => r("HostSystem", w.host),
        ["host", h, "Resources"] if h == host => r("ResourcePool", w.resource_pool),
        ["datastore"] => r("Folder", w.datastore_folder),
        ["datastore", name] => inv.datastores.by_name(name).and_then(|d| r("Datastore", &d.uuid)),
        ["network"] => r("Folder", w.network_folder),
        _ => None,
    }
}

/// The VM whose BIOS UUID (`vmSearch` true, `instanceUuid` not true) is `uuid`.
pub fn vm_by_uuid(model: &Model, uuid: &str, vm_search: bool, instance_uuid: bool) -> Option<Ref> {
    let vm = model.vms.by_uuid(uuid).filter(|_| vm_search && !instance_uuid)?;
    r("VirtualMachine", &vm.moid)
}

/// The VM registered from the .vmx at `path` (`[DATASTORE] dir/NAME.vmx`).
pub fn vm_by_datastore_path(model: &Model, path: &str) -> Option<Ref> {
    let vm = model.vms.by_vmx(&DatastorePath::parse(path)?)?;
    r("VirtualMachine", &vm.moid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datastore::{parse_datastore_spec, Datastores};
    use crate::sim::Sim;
    use crate::version::Release;
    use crate::vms::VmxSettings;

    #[test]
    fn inventory_paths() {
        let ds = Datastores::new(vec![parse_datastore_spec("datastore1=/tmp").unwrap()]).unwrap();
        let sim = Sim::for_tests_with(0, Release::V7_0, ds);
        let mut model = crate::sim::lock(&sim.model);
        let vmx = DatastorePath::parse("[datastore1] openQA/x.vmx").unwrap();
        let moid = model.vms.register("x", "564d9bef-acd9-b4e0-c8f0-aea8b9103515", vmx, VmxSettings::default());
        let find = |p: &str| by_inventory_path(&sim.inventory, &model, p).map(|(t, i)| format!("{t}:{i}"));
        assert_eq!(find("ha-datacenter").as_deref(), Some("Datacenter:ha-datacenter"));
        assert_eq!(find("ha-datacenter/vm").as_deref(), Some("Folder:ha-folder-vm"));
        assert_eq!(find("ha-datacenter/vm/on").as_deref(), Some("VirtualMachine:1"));
        assert_eq!(find("ha-datacenter/vm/x").as_deref(), Some(format!("VirtualMachine:{moid}").as_str()));
        assert_eq!(find("ha-datacenter/host/esx.test").as_deref(), Some("ComputeResource:ha-compute-res"));
        assert_eq!(find("ha-datacenter/host/esx.test/esx.test").as_deref(), Some("HostSystem:ha-host"));
        assert_eq!(find("ha-datacenter/host/esx.test/Resources").as_deref(), Some("ResourcePool:ha-root-pool"));
        let ds_id = sim.inventory.datastores.list[0].uuid.clone();
        assert_eq!(find("ha-datacenter/datastore/datastore1"), Some(format!("Datastore:{ds_id}")));
        for missing in ["", "DC0/vm/on", "ha-datacenter/vm/nope", "ha-datacenter/host/other", "ha-datacenter/x"] {
            assert_eq!(find(missing), None, "{missing}");
        }
        let uuid = "564D9BEF-ACD9-B4E0-C8F0-AEA8B9103515";
        assert_eq!(vm_by_uuid(&model, uuid, true, false).map(|r| r.1), Some(moid.clone()));
        assert_eq!(vm_by_uuid(&model, uuid, false, false), None, "vmSearch false looks for hosts");
        assert_eq!(vm_by_uuid(&model, uuid, true, true), None, "not an instance UUID");
        assert_eq!(vm_by_datastore_path(&model, "[datastore1] openQA/x.vmx").map(|r| r.1), Some(moid));
        assert_eq!(vm_by_datastore_path(&model, "[datastore1] openQA/y.vmx"), None);
    }
}
