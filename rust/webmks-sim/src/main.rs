//! `webmks-sim`: a test double for an ESXi host or a vCenter, on one HTTPS port. It answers the subset of
//! the vSphere SOAP API that clients use to find a VM and acquire a webmks ticket, and serves the ticket's
//! WebSocket with VMware's RFB dialect, re-encoding the screen of a real VNC server (QEMU).

#[macro_use]
mod log;
mod backend;
mod cert;
mod control;
mod https;
mod inventory;
mod mks;
mod properties;
mod sessions;
mod sim;
mod soap;
mod tickets;
mod tightpng;
mod update;
mod vim;
mod vmw;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::cert::Identity;
use crate::control::{Control, Stats};
use crate::inventory::{parse_vm_spec, Flavour, Inventory};
use crate::sim::{Settings, Sim};

const ABOUT: &str = "A stand-in for an ESXi host or vCenter in tests: vSphere SOAP subset, webmks tickets, and the \
VMware RFB dialect over WebSocket in front of a real VNC server";

const LONG_ABOUT: &str = "\
A stand-in for an ESXi host or vCenter in tests, on one HTTPS port with a fresh self-signed certificate.

What it is:
  * /sdk: the vSphere SOAP calls clients need to reach a console: RetrieveServiceContent, Login, Logout,
    SearchIndex.FindByInventoryPath / FindByUuid, ViewManager.CreateContainerView, DestroyView,
    PropertyCollector.RetrievePropertiesEx / ContinueRetrievePropertiesEx / RetrieveProperties, the Fetch
    accessor (pyVmomi's vm.name), and VirtualMachine.AcquireTicket('webmks'). Faults are shaped like
    vSphere's (HTTP 500, ServerFaultCode, InvalidLogin, NotAuthenticated, ManagedObjectNotFound,
    InvalidState, InvalidArgument). GET /sdk/vimServiceVersions.xml announces API 8.0.2.0. The SOAPAction
    version decides the ticket fields: url needs >= 7.0, certThumbprintList >= 7.0.3.1.
  * /ticket/<ticket>: the webmks WebSocket (subprotocol 'binary' required, else HTTP 400). Tickets are
    one-shot: unknown -> 404; used, expired, or acquired by a session that has logged out -> 503.
    Behind it: RFB 3.8 with security None, B,G,R,X pixels, TightPNG (fill + PNG) or Raw, the VMware
    pseudo-encodings (cursor, cursor state, LED state, key repeat), ServerCaps and the VMware client
    messages (VMWKeyEvent scancodes go to QEMU as extended key events), each connection backed by its own
    connection to --vnc.
    Type-127 server messages go only to clients that advertised VMWServerCaps; Heartbeats (every 3 s) and
    SessionClose only to clients whose ClientCaps asked for them.
  * /_sim/ (loopback only): GET stats (JSON counters); POST close, stall, freeze, thaw,
    refuse-tickets?n=N, close-after-keys?n=N.

What it is not: a vCenter or ESXi. No tasks, no power operations, no other managed objects, no
authorisation beyond one user, no VVC, no JPEG, no CopyRect, no audio, no multi-monitor.

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
    /// An extra name for the certificate (besides localhost and 127.0.0.1).
    #[arg(long)]
    hostname: Option<String>,
    /// Write the PEM certificate here (clients can use it as their CA file).
    #[arg(long, value_name = "FILE")]
    cert_out: Option<PathBuf>,
    /// Which endpoint to imitate.
    #[arg(long, value_enum, default_value = "esxi")]
    flavour: FlavourArg,
    /// The one user name Login accepts.
    #[arg(long, default_value = "root")]
    user: String,
    /// The password Login accepts.
    #[arg(long, env = "WEBMKS_SIM_PASSWORD", hide_env_values = true)]
    password: String,
    /// A VM: NAME[,moid=ID][,uuid=BIOS-UUID][,power=on|off]; repeatable. Default: one VM 'sut', powered on.
    #[arg(long = "vm", value_name = "SPEC")]
    vms: Vec<String>,
    /// The VNC server (QEMU) behind every VM's console; needed to serve /ticket.
    #[arg(long, value_name = "HOST:PORT")]
    vnc: Option<String>,
    /// The VNC server's password, if it asks for one.
    #[arg(long, env = "WEBMKS_SIM_VNC_PASSWORD", hide_env_values = true)]
    vnc_password: Option<String>,
    /// Seconds a ticket stays valid.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    ticket_ttl: u64,
    /// The host written into tickets (default: the listen address); "" leaves host and url out, so clients must
    /// use the API host.
    #[arg(long, value_name = "HOST")]
    ticket_host: Option<String>,
    /// Leave the url field out of tickets: clients must build wss://host:port/ticket/TICKET themselves.
    #[arg(long)]
    no_ticket_url: bool,
    /// The first N AcquireTicket calls fail with ManagedObjectNotFound, as ESXi does while it creates a VM.
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
    /// After ServerCaps, also send an unknown VMware server message, a Heartbeat and a SetReconnectToken (only to
    /// clients that advertised VMWServerCaps: the others get no type-127 messages at all).
    #[arg(long)]
    extra_vmware_messages: bool,
}

fn main() -> ExitCode {
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
    let specs = if cli.vms.is_empty() { vec!["sut".to_string()] } else { cli.vms.clone() };
    let specs = specs.iter().map(|s| parse_vm_spec(s)).collect::<Result<Vec<_>, _>>()?;
    let inventory = Inventory::new(flavour, &specs)?;
    let identity = Identity::generate(cli.hostname.as_deref()).map_err(|e| format!("certificate: {e}"))?;
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
    let settings = Settings {
        user: cli.user,
        password: cli.password,
        vnc: cli.vnc,
        vnc_password: cli.vnc_password,
        ticket_ttl: Duration::from_secs(cli.ticket_ttl),
        ticket_host: cli.ticket_host,
        ticket_url: !cli.no_ticket_url,
        close_mid_update_after: cli.close_mid_update_after,
        slow: Duration::from_millis(cli.slow_ms),
        extra_vmware_messages: cli.extra_vmware_messages,
    };
    let sim = Arc::new(Sim {
        settings,
        inventory,
        local,
        thumbprints: identity.thumbprints.clone(),
        ticket_thumbprints,
        sessions: Mutex::default(),
        tickets: Mutex::default(),
        views: Mutex::default(),
        stats: Stats::default(),
        control: Control::new(cli.refuse_tickets),
    });
    let mut stdout = std::io::stdout();
    writeln!(
        stdout,
        "webmks-sim listening on https://{local}/sdk sha1={} sha256={}",
        sim.thumbprints.sha1, sim.thumbprints.sha256
    )
    .and_then(|()| stdout.flush())
    .map_err(|e| format!("stdout: {e}"))?;
    for vm in &sim.inventory.vms {
        log!(
            "VM {} moid {} uuid {} {} path {}",
            vm.name,
            vm.moid,
            vm.uuid,
            if vm.powered_on { "poweredOn" } else { "poweredOff" },
            sim.inventory.path_of(vm)
        );
    }
    https::serve(listener, tokio_rustls::TlsAcceptor::from(Arc::new(tls)), sim).await;
    Ok(())
}
