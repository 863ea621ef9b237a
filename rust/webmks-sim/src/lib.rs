//! `webmks-sim`: a test double for a standalone ESXi host (or a vCenter) on one HTTPS port. It answers the
//! subset of the vSphere SOAP API that libvirt's esx driver, pyVmomi and our own client use (as a vCenter also
//! the REST API's sessions, VM list and console tickets), serves datastore files, runs a real QEMU guest for
//! every VM it powers on, and serves webmks tickets with VMware's RFB dialect over WebSocket, re-encoding the
//! screen of a real VNC server.

#[macro_use]
mod log;
mod acquire;
mod backend;
mod cert;
mod collector;
mod control;
mod datastore;
mod filters;
mod folder;
#[cfg(any(fuzzing, test))]
pub mod fuzzing;
mod guest;
mod https;
mod inventory;
mod lifecycle;
mod mks;
mod objects;
mod qmp;
mod rest;
mod search;
mod sessions;
mod sim;
mod soap;
mod tasks;
mod tickets;
mod tightpng;
mod update;
mod values;
mod version;
mod views;
mod vim;
mod vms;
mod vmw;
mod vmx;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::cert::Identity;
use crate::control::Control;
use crate::datastore::{parse_datastore_spec, Datastores};
use crate::guest::GuestSettings;
use crate::inventory::{parse_vm_spec, Flavour, Inventory};
use crate::rest::Generations;
use crate::sim::{lock, Settings, Sim};
use crate::version::Release;
use crate::vms::Registry;

const ABOUT: &str = "A stand-in for a standalone ESXi host (or vCenter) in tests: vSphere SOAP subset (and vCenter's \
REST console tickets), datastore files, QEMU guests, webmks tickets and the VMware RFB dialect over WebSocket";

const LONG_ABOUT: &str = "\
A stand-in for a standalone ESXi host (or vCenter) in tests, on one HTTPS port with a fresh self-signed
certificate. libvirt's esx driver (virsh -c 'esx://root@HOST:PORT/?no_verify=1'), pyVmomi and the project's own
client drive it.

What it is:
  * /sdk: the vSphere SOAP calls those clients make. ServiceInstance: RetrieveServiceContent (`about` of the
    --esxi-version), CurrentTime. SessionManager: Login, Logout, currentSession. SearchIndex:
    FindByInventoryPath (DC/vm/NAME, DC/host/HOST[/HOST|/Resources], DC/datastore/NAME), FindByUuid,
    FindByDatastorePath. ViewManager: CreateContainerView, DestroyView. PropertyCollector:
    RetrieveProperties, RetrievePropertiesEx / ContinueRetrievePropertiesEx / CancelRetrievePropertiesEx with
    traversal specs (folderToChildEntity, datacenterToVmFolder, computeResourceToHost, hostSystemToVm,
    hostSystemToDatastore, ContainerView.view, ...), CreateFilter, WaitForUpdates(Ex), DestroyPropertyFilter,
    and the Fetch accessor. Folder: RegisterVM_Task. VirtualMachine: PowerOnVM_Task, PowerOffVM_Task,
    UnregisterVM, Destroy_Task, AcquireTicket('webmks'). Tasks report TaskInfo (info.state, result, error).
    The inventory is a standalone host's: Folder ha-folder-root > Datacenter ha-datacenter > folders
    ha-folder-vm/-host/-datastore/-network, ComputeResource ha-compute-res with HostSystem ha-host and
    ResourcePool ha-root-pool, the datastores, the VMs (moids 1, 2, ...; vm-1001, ... as vCenter). Values
    carry their xsi:type as a real host writes them. Faults are vSphere's (HTTP 500, ServerFaultCode):
    InvalidLogin, NotAuthenticated, ManagedObjectNotFound, InvalidArgument, InvalidProperty, InvalidState,
    InvalidPowerState (power operations and UnregisterVM in the wrong state), TaskInProgress, FileNotFound (a
    missing .vmx; a disk or CD-ROM image missing at power-on), AlreadyExists, DuplicateName,
    InvalidDatastorePath, SystemError.
  * GET /sdk/vimServiceVersions.xml: the API versions of the --esxi-version. --no-soap: both /sdk paths answer
    404, as a vCenter behind a proxy that forwards only the REST API.
  * /api and /rest (--flavour vcenter only; a standalone host answers 404): vCenter's REST API, the part a
    console client uses, in the generations of --rest-generation. /api answers bare JSON values; the legacy
    /rest wraps them in {\"value\": ...} and always answers 200. The user is SOAP's, but a session serves only
    the API that opened it; the token goes back in the vmware-api-session-id header.
      POST /api/session, POST /rest/com/vmware/cis/session (HTTP basic): 201 \"TOKEN\" / 200 {\"value\":\"TOKEN\"}.
      DELETE the same: 204 / 200 (empty body); its tickets die with it. GET /api/session and POST
      /rest/com/vmware/cis/session?~action=get: {\"user\", \"created_time\", \"last_accessed_time\"}.
      GET /api/vcenter/vm?names=NAME (repeatable), /rest/vcenter/vm?filter.names=NAME (or filter.names.N): the
      VMs named (all without names) as {\"vm\", \"name\", \"power_state\", \"cpu_count\", \"memory_size_MiB\"}.
      POST /api/vcenter/vm/VM/console/tickets {\"type\":\"WEBMKS\"}, /rest/... {\"spec\":{\"type\":\"WEBMKS\"}}:
      201 {\"ticket\":\"wss://HOST:PORT/ticket/TICKET\"} / 200 {\"value\":{\"ticket\":...}}, a webmks ticket as
      AcquireTicket's (HOST: --ticket-host, or the listen address when that is empty).
    Errors are vCenter's: /api {\"error_type\":\"NOT_FOUND\",\"messages\":[{\"args\",\"default_message\",\"id\"}]},
    /rest {\"type\":\"com.vmware.vapi.std.errors.not_found\",\"value\":{\"messages\":[...]}}: 401 UNAUTHENTICATED
    (no, wrong or logged-out credentials or token), 404 NOT_FOUND (unknown VM or path), 400
    NOT_ALLOWED_IN_CURRENT_STATE (VM powered off), 503 SERVICE_UNAVAILABLE (within --mks-delay of a power-on,
    or refused by --refuse-tickets), 400 INVALID_ARGUMENT (a body that is not JSON, no type, or a type other
    than WEBMKS: VMRC is not simulated), 405 OPERATION_NOT_FOUND (another method on a known path).
  * /folder/PATH?dcPath=ha-datacenter&dsName=NAME: the files of datastore NAME (--datastore), GET, PUT
    (missing directories are made) and DELETE, for a live SOAP session's cookie or HTTP basic authentication;
    paths never leave the datastore's directory.
  * VMs: --vm VMs have the --vnc server as console; power operations only flip their state. VMs registered
    from a .vmx (RegisterVM_Task reads displayName, uuid.bios, memsize, RemoteDisplay.vnc.*, serial0.*,
    guestinfo.*) start a real QEMU guest at power-on (--guest-kernel, --guest-initrd, --qmp-dir; power-on
    reads the .vmx again, and fails with FileNotFound when a disk or CD-ROM image it names is missing from the
    datastore). Up to ESXi 6.7, RemoteDisplay.vnc.enabled/port/password give the VM a VNC server (RFB with VNC
    authentication) on the listen address at that port, as ESXi's built-in VNC server did; from 7.0 on those
    keys are ignored. A serial0 network port (serial0.fileType = \"network\", serial0.fileName =
    \"telnet://HOST:PORT\") is a TCP port on the listen address carrying the guest's serial line (raw bytes).
    Power-off, Destroy_Task and the simulator's exit stop the guest.
  * /ticket/<ticket>: the webmks WebSocket (subprotocol 'binary' required, else HTTP 400). Tickets are
    one-shot: unknown -> 404; used, expired, or acquired by a session that has logged out -> 503. AcquireTicket
    works on every version (ESXi 6.5's host client used webmks too); it fails with InvalidState while the VM
    is powered off and, for --mks-delay seconds after a power-on, with SystemError whose reason is \"'mks' is
    not available\". The ticket's fields follow the lower of the SOAPAction version and the host's API
    version: url needs >= 7.0, certThumbprintList >= 7.0.3.1.
    Behind it: RFB 3.8 with security None, B,G,R,X pixels, TightPNG (fill + PNG) or Raw, the VMware
    pseudo-encodings (cursor, cursor state, LED state, key repeat), ServerCaps and the VMware client
    messages (VMWKeyEvent scancodes go to QEMU as extended key events), each connection backed by its own
    connection to the VM's VNC server.
    Type-127 server messages go only to clients that advertised VMWServerCaps; Heartbeats (every 3 s) and
    SessionClose only to clients whose ClientCaps asked for them.
  * /_sim/ (loopback only): GET stats (JSON counters: logins, failed_logins and logouts of SOAP sessions,
    rest_logins, rest_failed_logins and rest_logouts of REST ones, tickets_issued by either), GET guests (the
    running guests by moid: QEMU's pid, QMP socket and log); POST close, stall, freeze, thaw,
    refuse-tickets?n=N, close-after-keys?n=N, fault?close=CODE[&reason=TEXT] or fault?oversize=BYTES
    (the open console connections end with that WebSocket close frame, or announce a message that large and
    drop; &next=1: the next connection, after its first update).

What it is not: an ESXi host or vCenter. No other managed objects, methods or REST resources, no VMRC
tickets, no authorisation beyond one user, no snapshots, no networks, no VVC, no JPEG, no CopyRect, no audio,
no multi-monitor.

At start it prints one line to stdout:
  webmks-sim listening on https://HOST:PORT/sdk sha1=AB:... sha256=AB:...
(thumbprints of the DER certificate) and logs requests to stderr.";

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FlavourArg {
    /// A standalone ESXi host: ha-folder-root, ha-property-collector, VMs 1, 2, …, paths ha-datacenter/vm/NAME.
    Esxi,
    /// vCenter: group-d1, propertyCollector, VMs vm-1001, …, paths DC0/vm/NAME.
    Vcenter,
}

#[derive(Debug, Parser)]
#[command(name = "webmks-sim", version, about = ABOUT, long_about = LONG_ABOUT)]
struct Cli {
    /// Address to listen on; port 0 picks a free port (printed in the start line).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// An extra name for the certificate (besides localhost and 127.0.0.1), also the host's name in the
    /// inventory (default: localhost.localdomain).
    #[arg(long)]
    hostname: Option<String>,
    /// Write the PEM certificate here (clients can use it as their CA file).
    #[arg(long, value_name = "FILE")]
    cert_out: Option<PathBuf>,
    /// Present this PEM certificate (on the API and the consoles alike) instead of a fresh self-signed one; its
    /// key is --key. RSA of 1024 to 4096 bits, ECDSA P-256 or P-384.
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// The PEM private key (PKCS#8, PKCS#1 or SEC1) of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// Which endpoint to imitate.
    #[arg(long, value_enum, default_value = "esxi")]
    flavour: FlavourArg,
    /// The version of the simulated host (`about`, vimServiceVersions.xml, ticket dialect; up to 6.7 VMs get the
    /// built-in VNC server of their .vmx's RemoteDisplay.vnc.* keys).
    #[arg(long, value_name = "6.5|6.7|7.0|8.0", default_value = "8.0", value_parser = Release::parse)]
    esxi_version: Release,
    /// A datastore: its name and the local directory holding its files; repeatable. VMs are registered from
    /// .vmx files in it, and /folder serves it.
    #[arg(long = "datastore", value_name = "NAME=DIR", value_parser = parse_datastore_spec)]
    datastores: Vec<datastore::Datastore>,
    /// The guest kernel every powered-on VM boots (tools/build-guest's vmlinuz).
    #[arg(long, value_name = "FILE", requires_all = ["guest_initrd", "qmp_dir"])]
    guest_kernel: Option<PathBuf>,
    /// The guest's initrd (tools/build-guest's initrd.gz).
    #[arg(long, value_name = "FILE", requires_all = ["guest_kernel", "qmp_dir"])]
    guest_initrd: Option<PathBuf>,
    /// Where a running VM's QMP socket (DIR/MOID.sock) and QEMU log (DIR/MOID.log) go.
    #[arg(long, value_name = "DIR", requires_all = ["guest_kernel", "guest_initrd"])]
    qmp_dir: Option<PathBuf>,
    /// The QEMU binary for guests.
    #[arg(long, value_name = "FILE", default_value = "qemu-system-x86_64")]
    qemu: PathBuf,
    /// Seconds after a power-on during which the VM's MKS is not available yet: AcquireTicket fails with a
    /// SystemError ('mks' is not available), as on a real host.
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    mks_delay: f64,
    /// The one user name Login accepts.
    #[arg(long, default_value = "root")]
    user: String,
    /// The password Login accepts.
    #[arg(long, env = "WEBMKS_SIM_PASSWORD", hide_env_values = true)]
    password: String,
    /// A VM: NAME[,moid=ID][,uuid=BIOS-UUID][,power=on|off]; repeatable. Its console is --vnc. Default: one VM
    /// 'sut', powered on, unless a --datastore is given (then none: VMs are registered from .vmx files).
    #[arg(long = "vm", value_name = "SPEC")]
    vms: Vec<String>,
    /// The VNC server (QEMU) behind the consoles of the --vm VMs; needed to serve their /ticket.
    #[arg(long, value_name = "HOST:PORT")]
    vnc: Option<String>,
    /// The VNC server's password, if it asks for one.
    #[arg(long, env = "WEBMKS_SIM_VNC_PASSWORD", hide_env_values = true)]
    vnc_password: Option<String>,
    /// Seconds a ticket stays valid.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    ticket_ttl: u64,
    /// The host written into tickets (default: the listen address); "" leaves host and url out of SOAP tickets,
    /// so clients must use the API host (REST tickets, always complete URLs, then carry the listen address).
    #[arg(long, value_name = "HOST")]
    ticket_host: Option<String>,
    /// Leave the url field out of SOAP tickets: clients must build wss://host:port/ticket/TICKET themselves.
    #[arg(long)]
    no_ticket_url: bool,
    /// Leave sslThumbprint and certThumbprintList out of tickets: clients must verify the console as they
    /// verified the API.
    #[arg(long)]
    no_ticket_thumbprints: bool,
    /// The first N AcquireTicket calls fail with ManagedObjectNotFound, as ESXi does while it creates a VM (REST
    /// console tickets with 503 SERVICE_UNAVAILABLE).
    #[arg(long, value_name = "N", default_value_t = 0)]
    refuse_tickets: u64,
    /// On every webmks connection, after N updates, send the first half of the next update and drop the connection.
    #[arg(long, value_name = "N")]
    close_mid_update_after: Option<u64>,
    /// Tickets carry the thumbprints of a different certificate than the one the server presents.
    #[arg(long)]
    wrong_thumbprint: bool,
    /// Delay every SOAP response by this many milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    slow_ms: u64,
    /// Answer 404 at /sdk and /sdk/vimServiceVersions.xml, as a vCenter reached through a proxy that only
    /// forwards the REST API.
    #[arg(long)]
    no_soap: bool,
    /// Which generations of vCenter's REST API to serve (vCenter flavour): /api (7.0 U2 on), the legacy /rest, or
    /// both.
    #[arg(long, value_enum, value_name = "api|rest|both", default_value = "both")]
    rest_generation: Generations,
    /// After ServerCaps, also send an unknown VMware server message, a Heartbeat and a SetReconnectToken (only to
    /// clients that advertised VMWServerCaps: the others get no type-127 messages at all).
    #[arg(long)]
    extra_vmware_messages: bool,
}

/// The program: parses the command line, runs the simulator until SIGTERM or SIGINT, and exits with its
/// status. `src/main.rs` is only this call; the modules live in the library so that the fuzz targets reach
/// its request parsers (the `fuzzing` module).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    log::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("webmks-sim: {message}");
    ExitCode::FAILURE
}

async fn run(cli: Cli) -> Result<(), String> {
    let flavour = match cli.flavour {
        FlavourArg::Esxi => Flavour::Esxi,
        FlavourArg::Vcenter => Flavour::Vcenter,
    };
    let specs = match (cli.vms.is_empty(), cli.datastores.is_empty()) {
        (true, true) => vec!["sut".to_string()],
        _ => cli.vms.clone(),
    };
    let specs = specs.iter().map(|s| parse_vm_spec(s)).collect::<Result<Vec<_>, _>>()?;
    let vms = Registry::new(flavour, &specs)?;
    let host_name = cli.hostname.clone().unwrap_or_else(|| "localhost.localdomain".to_string());
    let inventory = Inventory::new(flavour, cli.esxi_version, &host_name, Datastores::new(cli.datastores.clone())?);
    if !(0.0..=3600.0).contains(&cli.mks_delay) {
        return Err(format!("--mks-delay {} is not between 0 and 3600 seconds", cli.mks_delay));
    }
    let identity = match (&cli.cert, &cli.key) {
        (Some(cert), Some(key)) => Identity::load(cert, key)?,
        _ => Identity::generate(cli.hostname.as_deref()).map_err(|e| format!("certificate: {e}"))?,
    };
    let ticket_thumbprints = if cli.wrong_thumbprint {
        Identity::generate(None).map_err(|e| format!("certificate: {e}"))?.thumbprints
    } else {
        identity.thumbprints.clone()
    };
    if let Some(path) = &cli.cert_out {
        std::fs::write(path, &identity.pem).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let tls = identity.server_config().map_err(|e| format!("TLS configuration: {e}"))?;
    let listener = tokio::net::TcpListener::bind(cli.listen).await.map_err(|e| format!("{}: {e}", cli.listen))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let guests = match (cli.guest_kernel, cli.guest_initrd, cli.qmp_dir) {
        (Some(kernel), Some(initrd), Some(qmp_dir)) => {
            Some(GuestSettings { qemu: cli.qemu, kernel, initrd, qmp_dir, host: local.ip() })
        }
        _ => None,
    };
    let settings = Settings {
        user: cli.user,
        password: cli.password,
        vnc: cli.vnc,
        vnc_password: cli.vnc_password,
        ticket_ttl: Duration::from_secs(cli.ticket_ttl),
        ticket_host: cli.ticket_host,
        ticket_url: !cli.no_ticket_url,
        ticket_thumbprints: !cli.no_ticket_thumbprints,
        close_mid_update_after: cli.close_mid_update_after,
        slow: Duration::from_millis(cli.slow_ms),
        extra_vmware_messages: cli.extra_vmware_messages,
        mks_delay: Duration::from_secs_f64(cli.mks_delay),
        guests,
        soap: !cli.no_soap,
        rest_generations: cli.rest_generation,
    };
    let thumbprints = identity.thumbprints.clone();
    let control = Control::new(cli.refuse_tickets);
    let sim = Arc::new(Sim::new(settings, inventory, vms, local, thumbprints, ticket_thumbprints, control));
    let mut stdout = std::io::stdout();
    writeln!(
        stdout,
        "webmks-sim listening on https://{local}/sdk sha1={} sha256={}",
        sim.thumbprints.sha1, sim.thumbprints.sha256
    )
    .and_then(|()| stdout.flush())
    .map_err(|e| format!("stdout: {e}"))?;
    log_inventory(&sim);
    let serve = https::serve(listener, tokio_rustls::TlsAcceptor::from(Arc::new(tls)), sim.clone());
    tokio::select! {
        () = serve => {}
        why = terminated() => log!("{why}: stopping"),
    }
    lifecycle::stop_all(&sim).await;
    Ok(())
}

/// What the simulated host has at start.
fn log_inventory(sim: &Sim) {
    let inv = &sim.inventory;
    log!("{} ({:?}), host {}", inv.full_name(), inv.flavour, inv.host_name);
    for d in &inv.datastores.list {
        log!("datastore {} ({}) is {}", d.name, d.mount_path(), d.dir.display());
    }
    for vm in &lock(&sim.model).vms.vms {
        log!(
            "VM {} moid {} uuid {} {} path {}",
            vm.name,
            vm.moid,
            vm.uuid,
            if vm.powered_on { "poweredOn" } else { "poweredOff" },
            inv.path_of(&vm.name)
        );
    }
}

/// Waits for SIGTERM or SIGINT; names it. A thread takes the signals from signal-hook's self-pipe, so tokio needs no
/// signal driver (the core library linked into perl must not get one through feature unification).
async fn terminated() -> &'static str {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = match signal_hook::iterator::Signals::new([SIGTERM, SIGINT]) {
        Ok(signals) => signals,
        Err(e) => {
            log!("cannot handle SIGTERM and SIGINT: {e}");
            return std::future::pending().await;
        }
    };
    let (caught, signal) = tokio::sync::oneshot::channel();
    // The thread keeps the handlers for good: another signal while the guests stop is ignored, not fatal.
    let waiter = std::thread::Builder::new().name("signals".into()).spawn(move || {
        let mut caught = Some(caught);
        for signal in signals.forever() {
            if let Some(caught) = caught.take() {
                let _ = caught.send(signal);
            }
        }
    });
    if let Err(e) = waiter {
        log!("cannot handle SIGTERM and SIGINT: no thread: {e}");
        return std::future::pending().await;
    }
    match signal.await {
        Ok(SIGTERM) => "SIGTERM",
        Ok(_) => "SIGINT",
        Err(_) => std::future::pending().await,
    }
}
