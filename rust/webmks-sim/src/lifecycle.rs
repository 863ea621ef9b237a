//! The life of a VM: `RegisterVM_Task` (from a .vmx in a datastore), `PowerOnVM_Task` (reads the .vmx again,
//! checks its disks and CD-ROM images exist, starts the guest), `PowerOffVM_Task` (stops it), `UnregisterVM`
//! and `Destroy_Task`. The `…_Task` methods answer with a Task at once and do the work in it, so faults of the
//! work itself arrive in the task's `info.error`, as on ESXi.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::datastore::DatastorePath;
use crate::guest::{Guest, GuestConfig};
use crate::inventory::uuid_from;
use crate::sessions::random_hex;
use crate::sim::{lock, Sim};
use crate::soap::{moref, Fault, Request};
use crate::tasks::{Origin, State};
use crate::values::Value;
use crate::vms::{Vm, VmxSettings};
use crate::vmx::Vmx;

/// Starts a task (waiting property filters are told); returns its id.
fn start_task(sim: &Sim, origin: Origin) -> String {
    let id = lock(&sim.model).tasks.start(origin, SystemTime::now());
    sim.changed();
    id
}

/// Ends a task with its result or fault (waiting property filters are told).
fn finish_task(sim: &Sim, id: &str, outcome: Result<Option<Value>, Fault>) {
    if let Err(f) = &outcome {
        log!("task {id}: {} ({})", f.kind, f.message);
    }
    lock(&sim.model).tasks.finish(id, outcome, SystemTime::now());
    sim.changed();
}

/// The `returnval` of a `…_Task` method.
fn task_ref(id: &str) -> String {
    moref("returnval", "Task", id)
}

/// The VM a call is made on, or ManagedObjectNotFound.
fn target_vm(sim: &Sim, req: &Request) -> Result<Vm, Fault> {
    let (ty, id) = req.this();
    let found = (ty == "VirtualMachine").then(|| lock(&sim.model).vms.by_moid(id).cloned()).flatten();
    found.ok_or_else(|| Fault::object_not_found(ty, id))
}

/// A TaskInProgress fault when a task on the VM is still running.
fn check_idle(sim: &Sim, vm: &Vm) -> Result<(), Fault> {
    let model = lock(&sim.model);
    let running = model.tasks.recent_for("VirtualMachine", &vm.moid).find(|t| t.state == State::Running);
    running.map_or(Ok(()), |t| Err(Fault::task_in_progress(&t.id)))
}

fn vm_origin(vm: &Vm, method: &'static str, description_id: &'static str, user: &str) -> Origin {
    Origin {
        method,
        description_id,
        entity: ("VirtualMachine", vm.moid.clone()),
        entity_name: vm.name.clone(),
        user: user.to_string(),
    }
}

/// Reads and parses a .vmx from its datastore.
fn read_vmx(sim: &Sim, path: &DatastorePath) -> Result<Vmx, Fault> {
    let local = sim.inventory.datastores.local(path).map_err(|_| Fault::invalid_datastore_path(&path.to_string()))?;
    let text = std::fs::read_to_string(&local).map_err(|_| Fault::file_not_found(&path.to_string()))?;
    Vmx::parse(&text).map_err(|e| Fault::new("InvalidVmConfig", format!("Invalid configuration for {path}: {e}")))
}

/// What the simulator keeps of a .vmx.
fn settings_of(vmx: &Vmx) -> VmxSettings {
    VmxSettings {
        memory_mb: vmx.memory_mb().unwrap_or(256),
        num_cpus: vmx.get("numvcpus").and_then(|n| n.trim().parse().ok()).unwrap_or(1),
        guestinfo: vmx.guestinfo(),
        remote_display: vmx.remote_display(),
        serial_port: vmx.network_serial_port(),
    }
}

/// What a log line tells of a .vmx: memory, VNC display, serial port and the `guestinfo` keys (not their
/// values, which may be secrets).
fn describe(settings: &VmxSettings, builtin_vnc: bool) -> String {
    let vnc = match (&settings.remote_display, builtin_vnc) {
        (Some(d), true) => format!("VNC port {}", d.port),
        (Some(_), false) => "RemoteDisplay.vnc ignored (no built-in VNC server)".to_string(),
        (None, _) => "no VNC".to_string(),
    };
    let keys: Vec<&str> = settings.guestinfo.iter().map(|(k, _)| k.as_str()).collect();
    format!(
        "{} MiB, {vnc}, serial {}, guestinfo keys [{}]",
        settings.memory_mb,
        settings.serial_port.map_or("none".to_string(), |p| format!("port {p}")),
        keys.join(", ")
    )
}

/// `Folder.RegisterVM_Task(path, name, asTemplate, pool, host)` on the VM folder.
pub fn register_vm(sim: &Sim, req: &Request, user: &str) -> Result<String, Fault> {
    let w = sim.inventory.well_known();
    let (ty, id) = req.this();
    if (ty, id) != ("Folder", w.vm_folder) {
        let exists = lock(&sim.model).world(&sim.inventory, None).resolve(ty, id).is_some();
        return Err(if exists {
            Fault::not_supported("RegisterVM_Task only on the datacenter's VM folder")
        } else {
            Fault::object_not_found(ty, id)
        });
    }
    if req.param("asTemplate") == Some("true") {
        return Err(Fault::not_supported("templates"));
    }
    let raw = req.param("path").unwrap_or_default();
    let path = DatastorePath::parse(raw).ok_or_else(|| Fault::invalid_datastore_path(raw))?;
    let origin = Origin {
        method: "RegisterVM_Task",
        description_id: "Folder.registerVm",
        entity: ("Folder", w.vm_folder.to_string()),
        entity_name: "vm".into(),
        user: user.to_string(),
    };
    let task = start_task(sim, origin);
    let outcome = register(sim, &path, req.param("name").filter(|n| !n.is_empty()));
    finish_task(sim, &task, outcome.map(|moid| Some(Value::moref("VirtualMachine", &moid))));
    Ok(task_ref(&task))
}

fn register(sim: &Sim, path: &DatastorePath, name: Option<&str>) -> Result<String, Fault> {
    let vmx = read_vmx(sim, path)?;
    let file_stem = path.path.rsplit('/').next().unwrap_or_default().trim_end_matches(".vmx");
    let name = name.or(vmx.display_name()).unwrap_or(file_stem).to_string();
    let uuid = vmx.bios_uuid().unwrap_or_else(|| uuid_from(&format!("{path}{}", random_hex(8))));
    let settings = settings_of(&vmx);
    let mut model = lock(&sim.model);
    if model.vms.by_vmx(path).is_some() {
        return Err(Fault::already_exists(&path.to_string()));
    }
    if let Some(other) = model.vms.by_name(&name) {
        return Err(Fault::new("DuplicateName", format!("The name '{name}' already exists.")).with_fields(format!(
            "<name>{}</name>{}",
            crate::soap::escape(&name),
            moref("object", "VirtualMachine", &other.moid)
        )));
    }
    let moid = model.vms.register(&name, &uuid, path.clone(), settings.clone());
    drop(model);
    let what = describe(&settings, sim.inventory.release.has_builtin_vnc());
    log!("VM {name} registered from {path}: moid {moid}, uuid {uuid}, {what}");
    Ok(moid)
}

/// `VirtualMachine.UnregisterVM`: refused while the VM is on or busy.
pub fn unregister_vm(sim: &Sim, req: &Request) -> Result<String, Fault> {
    let vm = target_vm(sim, req)?;
    check_idle(sim, &vm)?;
    if vm.powered_on {
        return Err(Fault::invalid_power_state("poweredOff", "poweredOn"));
    }
    lock(&sim.model).vms.unregister(&vm.moid);
    sim.changed();
    log!("VM {} (moid {}) unregistered", vm.name, vm.moid);
    Ok(String::new())
}

/// `VirtualMachine.PowerOnVM_Task`.
pub fn power_on(sim: &Arc<Sim>, req: &Request, user: &str) -> Result<String, Fault> {
    let vm = target_vm(sim, req)?;
    check_idle(sim, &vm)?;
    let task = start_task(sim, vm_origin(&vm, "PowerOnVM_Task", "VirtualMachine.powerOn", user));
    let sim = sim.clone();
    let id = task.clone();
    tokio::spawn(async move {
        let outcome = start_guest(&sim, &vm).await;
        if outcome.is_ok() {
            if let Some(v) = lock(&sim.model).vms.by_moid_mut(&vm.moid) {
                v.powered_on = true;
                v.powered_on_at = Some(Instant::now());
            }
            log!("VM {} (moid {}) powered on", vm.name, vm.moid);
        }
        finish_task(&sim, &id, outcome.map(|()| None));
    });
    Ok(task_ref(&task))
}

/// Powers a VM's guest on: for a registered VM, re-reads its .vmx, checks the files it uses and starts QEMU.
async fn start_guest(sim: &Sim, vm: &Vm) -> Result<(), Fault> {
    if vm.powered_on {
        return Err(Fault::invalid_power_state("poweredOff", "poweredOn"));
    }
    let Some(path) = &vm.vmx else { return Ok(()) };
    let vmx = read_vmx(sim, path)?;
    for file in vmx.referenced_files() {
        let found = sim.inventory.datastores.resolve_vmx_file(path, &file);
        let exists = found.as_ref().and_then(|p| sim.inventory.datastores.local(p).ok()).is_some_and(|l| l.is_file());
        if !exists {
            return Err(Fault::file_not_found(&found.map_or(file, |p| p.to_string())));
        }
    }
    let settings = settings_of(&vmx);
    let builtin_vnc = sim.inventory.release.has_builtin_vnc();
    log!("VM {} (moid {}) powering on, its .vmx read again: {}", vm.name, vm.moid, describe(&settings, builtin_vnc));
    let runtime = sim.settings.guests.as_ref().ok_or_else(|| {
        Fault::system_error(
            "no guest to run: the simulator was started without --guest-kernel, --guest-initrd and --qmp-dir",
        )
    })?;
    let config = GuestConfig {
        moid: vm.moid.clone(),
        name: vm.name.clone(),
        memory_mb: settings.memory_mb,
        remote_display: settings.remote_display.clone().filter(|_| builtin_vnc),
        serial_port: settings.serial_port,
    };
    let guest = Guest::start(runtime, &config).await.map_err(|e| Fault::system_error(&e))?;
    if let Some(v) = lock(&sim.model).vms.by_moid_mut(&vm.moid) {
        v.settings = settings;
    }
    lock(&sim.guests).insert(vm.moid.clone(), guest);
    Ok(())
}

/// `VirtualMachine.PowerOffVM_Task`: stops the guest.
pub fn power_off(sim: &Arc<Sim>, req: &Request, user: &str) -> Result<String, Fault> {
    let vm = target_vm(sim, req)?;
    check_idle(sim, &vm)?;
    let task = start_task(sim, vm_origin(&vm, "PowerOffVM_Task", "VirtualMachine.powerOff", user));
    let sim = sim.clone();
    let id = task.clone();
    tokio::spawn(async move {
        let outcome = if vm.powered_on {
            stop_guest(&sim, &vm).await;
            Ok(None)
        } else {
            Err(Fault::invalid_power_state("poweredOn", "poweredOff"))
        };
        finish_task(&sim, &id, outcome);
    });
    Ok(task_ref(&task))
}

async fn stop_guest(sim: &Sim, vm: &Vm) {
    let guest = lock(&sim.guests).remove(&vm.moid);
    if let Some(guest) = guest {
        guest.stop().await;
    }
    if let Some(v) = lock(&sim.model).vms.by_moid_mut(&vm.moid) {
        v.powered_on = false;
        v.powered_on_at = None;
    }
    log!("VM {} (moid {}) powered off", vm.name, vm.moid);
}

/// `VirtualMachine.Destroy_Task`: unregisters a powered-off VM and deletes its .vmx and the disks next to it.
pub fn destroy(sim: &Sim, req: &Request, user: &str) -> Result<String, Fault> {
    let vm = target_vm(sim, req)?;
    check_idle(sim, &vm)?;
    let task = start_task(sim, vm_origin(&vm, "Destroy_Task", "VirtualMachine.destroy", user));
    let outcome = if vm.powered_on {
        Err(Fault::invalid_power_state("poweredOff", "poweredOn"))
    } else {
        delete_files(sim, &vm);
        lock(&sim.model).vms.unregister(&vm.moid);
        log!("VM {} (moid {}) destroyed", vm.name, vm.moid);
        Ok(None)
    };
    finish_task(sim, &task, outcome);
    Ok(task_ref(&task))
}

/// Deletes a registered VM's .vmx and the virtual disks in its directory (ISO images and files elsewhere stay).
fn delete_files(sim: &Sim, vm: &Vm) {
    let Some(path) = &vm.vmx else { return };
    let ds = &sim.inventory.datastores;
    let disks = read_vmx(sim, path).map(|v| v.referenced_files()).unwrap_or_default();
    let own = disks
        .iter()
        .filter_map(|f| ds.resolve_vmx_file(path, f))
        .filter(|p| p.datastore == path.datastore && p.dir() == path.dir() && p.path.ends_with(".vmdk"))
        .chain(std::iter::once(path.clone()));
    for file in own {
        if let Ok(local) = ds.local(&file) {
            match std::fs::remove_file(&local) {
                Ok(()) => log!("deleted {file}"),
                Err(e) => log!("cannot delete {file}: {e}"),
            }
        }
    }
}

/// Stops every guest (at exit).
pub async fn stop_all(sim: &Sim) {
    let guests: Vec<Guest> = lock(&sim.guests).drain().map(|(_, g)| g).collect();
    for g in guests {
        g.stop().await;
    }
}
