//! The guest behind a powered-on VM: a real QEMU (software emulation, never KVM) booting the tiny Linux guest of
//! `tools/build-guest` (vmlinuz and initrd.gz: a busybox shell on the 1024x768 framebuffer console and a control
//! shell on the serial port that prints `NATIVEVNC-GUEST-READY`).
//!
//! Per guest, in the settings' `qmp_dir`: the QMP socket `MOID.sock` and QEMU's stdout and stderr in `MOID.log`.
//! The console is QEMU's VNC server, `share=force-shared` (what os-autoinst's domain XML asks for):
//! - with a [`RemoteDisplay`] (ESXi 6.5/6.7's built-in VNC server) on `host:port`, with VNC authentication when it
//!   has a password. The password is set through QMP (`change-vnc-password`), never on QEMU's command line;
//!   `password=on` makes QEMU refuse every login until then. VNC authentication uses the first 8 characters.
//! - without, on an internal endpoint only the simulator knows: 127.0.0.1, a port in the ephemeral range (never
//!   5900-5999), no password.
//!
//! The serial port, when configured, is a raw TCP server on `host:port` that takes one client at a time and
//! accepts the next once it leaves; what the guest writes while nobody is connected is lost.
//!
//! QEMU is killed when the [`Guest`] is dropped and, through `PR_SET_PDEATHSIG`, when the simulator dies (even by
//! SIGKILL). The kernel sends that signal when the *thread* that forked QEMU exits, so every QEMU is forked by one
//! dedicated thread that lives as long as the process.
//!
//! QEMU is a [`std::process::Child`]: the simulator installs no SIGCHLD handler. The [`Guest`] owns it and waits by
//! polling [`Child::try_wait`], which never blocks a runtime thread; and since `Child` does not signal a process it
//! has reaped, killing it can never hit a process that reused QEMU's pid.

use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use crate::qmp::Qmp;
use crate::vmx::RemoteDisplay;

/// How long QEMU may take until QMP answers and the VNC port accepts connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `stop` waits for QEMU to quit through QMP before it kills it.
const QUIT_GRACE: Duration = Duration::from_secs(5);
/// How long to wait for a killed QEMU to be reaped.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// How often a wait for QEMU's exit looks.
const EXIT_POLL: Duration = Duration::from_millis(20);
/// The guest's kernel command line: `vga=` first (the 1024x768 framebuffer console).
const KERNEL_APPEND: &str = "vga=792 quiet loglevel=1";
/// How much of QEMU's log a start error quotes.
const LOG_TAIL: u64 = 2000;
/// QEMU's VNC display N listens on port 5900 + N.
const VNC_BASE: u16 = 5900;
/// Ports the internal VNC endpoint must not use: where ESXi's built-in VNC servers and os-autoinst look.
const VNC_PUBLIC: std::ops::RangeInclusive<u16> = 5900..=5999;
/// How many displays QEMU may try past the chosen one for the internal endpoint (`to=`).
const INTERNAL_DISPLAYS: u16 = 64;
/// How often the start sequence polls.
const POLL: Duration = Duration::from_millis(50);

/// How the simulator runs guests (the same for all of them).
#[derive(Debug, Clone)]
pub struct GuestSettings {
    /// The QEMU binary (`qemu-system-x86_64`, looked up in PATH when it has no slash).
    pub qemu: PathBuf,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// Where `MOID.sock` and `MOID.log` go (created if missing).
    pub qmp_dir: PathBuf,
    /// The simulated host's address: the remote display and the serial port listen there.
    pub host: IpAddr,
}

/// One VM's guest, from its `.vmx`. `Debug` hides the VNC password.
#[derive(Debug, Clone)]
pub struct GuestConfig {
    /// The VM's managed object id: names the socket and log files.
    pub moid: String,
    pub name: String,
    pub memory_mb: u32,
    /// ESXi 6.5/6.7's built-in VNC server; `None` for an internal console only the simulator uses.
    pub remote_display: Option<RemoteDisplay>,
    /// The TCP port on `host` carrying the guest's serial port; `None` for no serial port.
    pub serial_port: Option<u16>,
}

/// Where the guest's VNC server is: `HOST:PORT` to connect to, and its password. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Console {
    pub addr: String,
    pub password: Option<String>,
}

impl fmt::Debug for Console {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Console")
            .field("addr", &self.addr)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

/// A running QEMU. Dropping it kills QEMU; [`Guest::stop`] shuts it down properly.
pub struct Guest {
    moid: String,
    child: Option<Child>,
    pid: Option<u32>,
    qmp_path: PathBuf,
    log_path: PathBuf,
    console: Console,
}

impl Guest {
    /// Starts QEMU and returns once QMP answers, the VNC password is set and the VNC port accepts connections
    /// (at most 30 s; the guest itself boots in about 15-20 s more). On failure QEMU is killed and the error
    /// quotes the end of its log.
    pub async fn start(settings: &GuestSettings, config: &GuestConfig) -> Result<Guest, String> {
        let mut guest = Guest::launch(settings, config).await?;
        if let Err(e) = guest.configure(config).await {
            guest.terminate(false).await;
            return Err(format!("guest {}: {e}; {}", config.moid, log_tail(&guest.log_path)));
        }
        log!(
            "guest {} ({}) started: QEMU pid {}, console {}{}, serial {}, QMP {}, log {}",
            config.moid,
            config.name,
            guest.pid().unwrap_or_default(),
            guest.console.addr,
            if guest.console.password.is_some() { " with VNC authentication" } else { "" },
            config.serial_port.map_or("none".to_string(), |p| format!("{}", Endpoint(settings.host, p))),
            guest.qmp_path().display(),
            guest.log_path().display(),
        );
        Ok(guest)
    }

    /// Where to reach the guest's VNC server.
    pub fn console(&self) -> Console {
        self.console.clone()
    }

    /// QEMU's QMP socket, `QMP_DIR/MOID.sock` (it serves one client at a time; see [`Qmp`]).
    pub fn qmp_path(&self) -> &Path {
        &self.qmp_path
    }

    /// QEMU's stdout and stderr, `QMP_DIR/MOID.log` (kept after the guest stops).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// QEMU's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Asks QEMU to quit through QMP, kills it when it has not exited within 5 s, waits for it and removes the QMP
    /// socket.
    pub async fn stop(mut self) {
        match self.terminate(true).await {
            Some(status) => log!("guest {} stopped ({status})", self.moid),
            None => log!("guest {} stopped (QEMU not reaped)", self.moid),
        }
    }

    /// Validates the configuration and spawns QEMU.
    async fn launch(settings: &GuestSettings, config: &GuestConfig) -> Result<Guest, String> {
        let moid = &config.moid;
        let unsafe_moid = moid.is_empty() || moid == "." || moid == "..";
        if unsafe_moid || moid.contains(['/', ',', '\0']) {
            return Err(format!("guest '{moid}': a managed object id must be usable as a file name"));
        }
        if config.memory_mb == 0 {
            return Err(format!("guest {moid}: no memory"));
        }
        if settings.qmp_dir.to_string_lossy().contains(',') {
            return Err(format!("guest {moid}: QEMU cannot take a comma in {}", settings.qmp_dir.display()));
        }
        for (what, path) in [("kernel", &settings.kernel), ("initrd", &settings.initrd)] {
            std::fs::metadata(path)
                .map_err(|e| format!("guest {moid}: {what} {}: {e} (built by tools/build-guest)", path.display()))?;
        }
        let vnc =
            vnc_option(settings.host, config.remote_display.as_ref()).map_err(|e| format!("guest {moid}: {e}"))?;
        std::fs::create_dir_all(&settings.qmp_dir).map_err(|e| format!("{}: {e}", settings.qmp_dir.display()))?;
        let qmp_path = settings.qmp_dir.join(format!("{moid}.sock"));
        let log_path = settings.qmp_dir.join(format!("{moid}.log"));
        remove_socket(&qmp_path)?;
        let log = File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
        let log_err = log.try_clone().map_err(|e| format!("{}: {e}", log_path.display()))?;

        let mut command = Command::new(&settings.qemu);
        command
            .args(["-accel", "tcg", "-name"])
            .arg(format!("guest={}", config.name.replace(',', ",,")))
            .arg("-m")
            .arg(config.memory_mb.to_string())
            .arg("-kernel")
            .arg(&settings.kernel)
            .arg("-initrd")
            .arg(&settings.initrd)
            .args(["-append", KERNEL_APPEND, "-display", "none", "-no-reboot", "-nic", "none"])
            .arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", qmp_path.display()))
            .args(["-vnc", &vnc.option])
            .arg("-serial")
            .arg(match config.serial_port {
                Some(port) => format!("tcp:{},server=on,wait=off,nodelay=on", Endpoint(settings.host, port)),
                None => "none".to_string(),
            })
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        die_with_parent(&mut command);
        let child = spawn(command).await.map_err(|e| format!("guest {moid}: {}: {e}", settings.qemu.display()))?;
        let console = Console { addr: vnc.addr, password: vnc.password };
        Ok(Guest { moid: moid.clone(), pid: Some(child.id()), child: Some(child), qmp_path, log_path, console })
    }

    /// Waits for QMP, sets the VNC password, learns the VNC port and waits until it accepts connections.
    async fn configure(&mut self, config: &GuestConfig) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut qmp = self.wait_for_qmp(deadline).await?;
        if let Some(password) = &self.console.password {
            qmp.execute("change-vnc-password", Some(json!({ "password": password }))).await?;
        }
        let vnc = qmp.execute("query-vnc", None).await?;
        drop(qmp);
        let port = vnc_port(&vnc).ok_or_else(|| format!("QEMU's VNC server is not listening: {vnc}"))?;
        match &config.remote_display {
            Some(display) if display.port != port => {
                return Err(format!("QEMU's VNC server listens on port {port}, not {}", display.port));
            }
            Some(_) => {}
            None => self.console.addr = format!("{}", Endpoint(IpAddr::V4(Ipv4Addr::LOCALHOST), port)),
        }
        self.wait_for_vnc(deadline).await
    }

    async fn wait_for_qmp(&mut self, deadline: Instant) -> Result<Qmp, String> {
        loop {
            self.check_running()?;
            let left = deadline.saturating_duration_since(Instant::now());
            match Qmp::connect(&self.qmp_path, left.max(POLL)).await {
                Ok(qmp) => return Ok(qmp),
                Err(e) if left.is_zero() => return Err(format!("QMP did not answer within {START_TIMEOUT:?}: {e}")),
                Err(_) => tokio::time::sleep(POLL).await,
            }
        }
    }

    async fn wait_for_vnc(&mut self, deadline: Instant) -> Result<(), String> {
        loop {
            self.check_running()?;
            match TcpStream::connect(&self.console.addr).await {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!("the VNC port {} accepts no connection: {e}", self.console.addr));
                }
                Err(_) => tokio::time::sleep(POLL).await,
            }
        }
    }

    /// An error when QEMU has exited.
    fn check_running(&mut self) -> Result<(), String> {
        let child = self.child.as_mut().ok_or("QEMU is not running")?;
        match child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!("QEMU exited ({status})")),
            Err(e) => Err(format!("QEMU: {e}")),
        }
    }

    /// Ends QEMU (gracefully through QMP `quit` first when asked), reaps it and removes the QMP socket. Returns
    /// QEMU's exit status (`None` if it could not be reaped in time: a background thread reaps it then). QEMU stays
    /// in `self` until it is reaped, so `Drop` kills it when this is cancelled.
    async fn terminate(&mut self, graceful: bool) -> Option<ExitStatus> {
        let (child, qmp_path) = (self.child.as_mut()?, &self.qmp_path);
        let mut status = None;
        if graceful {
            let quit = async {
                let mut qmp = Qmp::connect(qmp_path, QUIT_GRACE).await?;
                // QEMU may close the connection before it answers: the wait below tells.
                let _ = qmp.execute("quit", None).await;
                exited(child).await.map_err(|e| e.to_string())
            };
            status = tokio::time::timeout(QUIT_GRACE, quit).await.ok().and_then(Result::ok);
        }
        if status.is_none() {
            let _ = child.kill();
            status = tokio::time::timeout(KILL_WAIT, exited(child)).await.ok().and_then(Result::ok);
        }
        if let (Some(unreaped), None) = (self.child.take(), status) {
            kill_and_reap(unreaped);
        }
        self.pid = None;
        let _ = remove_socket(&self.qmp_path);
        status
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            kill_and_reap(child);
            let _ = remove_socket(&self.qmp_path);
        }
    }
}

/// Waits until `child` has exited and reaps it.
async fn exited(child: &mut Child) -> std::io::Result<ExitStatus> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        tokio::time::sleep(EXIT_POLL).await;
    }
}

/// Kills `child` and reaps it on a thread of its own, so that neither a runtime thread nor `Drop` blocks on it.
fn kill_and_reap(mut child: Child) {
    let _ = child.kill();
    if !matches!(child.try_wait(), Ok(None)) {
        return;
    }
    let pid = child.id();
    let reaper = std::thread::Builder::new().name("qemu-reaper".into()).spawn(move || {
        let _ = child.wait();
    });
    if let Err(e) = reaper {
        log!("QEMU {pid} killed, but it stays a zombie until the simulator exits: no reaper thread: {e}");
    }
}

/// `HOST:PORT`, IPv6 hosts in brackets (the form QEMU's options and `TcpStream::connect` take).
struct Endpoint(IpAddr, u16);

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(ip) => write!(f, "{ip}:{}", self.1),
            IpAddr::V6(ip) => write!(f, "[{ip}]:{}", self.1),
        }
    }
}

/// QEMU's `-vnc` option and where the console will be.
struct VncPlan {
    option: String,
    /// For the internal endpoint, the first port QEMU tries; the real one comes from `query-vnc`.
    addr: String,
    password: Option<String>,
}

fn vnc_option(host: IpAddr, display: Option<&RemoteDisplay>) -> Result<VncPlan, String> {
    let Some(display) = display else {
        let first = internal_vnc_port()?;
        let (from, to) = (first - VNC_BASE, first.saturating_add(INTERNAL_DISPLAYS) - VNC_BASE);
        return Ok(VncPlan {
            option: format!("127.0.0.1:{from},to={to},share=force-shared"),
            addr: format!("{}", Endpoint(IpAddr::V4(Ipv4Addr::LOCALHOST), first)),
            password: None,
        });
    };
    let number = display.port.checked_sub(VNC_BASE).ok_or_else(|| {
        format!(
            "RemoteDisplay.vnc.port {} is below {VNC_BASE}: QEMU's VNC server listens on 5900 + display",
            display.port
        )
    })?;
    let listen = match host {
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
    };
    let auth = if display.password.is_some() { ",password=on" } else { "" };
    Ok(VncPlan {
        option: format!("{listen}:{number},share=force-shared{auth}"),
        addr: format!("{}", Endpoint(connectable(host), display.port)),
        password: display.password.clone(),
    })
}

/// A free port on 127.0.0.1 from the kernel's ephemeral range, outside 5900-5999 with room for
/// [`INTERNAL_DISPLAYS`] displays after it.
fn internal_vnc_port() -> Result<u16, String> {
    for _ in 0..20 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| format!("127.0.0.1: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let last = port.saturating_add(INTERNAL_DISPLAYS);
        if port > *VNC_PUBLIC.end() && last - port == INTERNAL_DISPLAYS {
            return Ok(port);
        }
    }
    Err("no free port for the internal VNC endpoint outside 5900-5999".into())
}

/// The address to connect to for a server listening on `host`: loopback for the wildcard addresses.
fn connectable(host: IpAddr) -> IpAddr {
    match host {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    }
}

/// The TCP port in QMP `query-vnc`'s answer (`service`), when the server is enabled.
fn vnc_port(vnc: &Value) -> Option<u16> {
    if vnc.get("enabled").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    vnc.get("service")?.as_str()?.parse().ok()
}

fn remove_socket(path: &Path) -> Result<(), String> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(format!("{}: {e}", path.display())),
        _ => Ok(()),
    }
}

/// "QEMU's log ends with: ..." (the last [`LOG_TAIL`] bytes).
fn log_tail(path: &Path) -> String {
    let read = || -> std::io::Result<String> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).trim_end().to_string())
    };
    match read() {
        Ok(tail) if tail.is_empty() => format!("QEMU's log {} is empty", path.display()),
        Ok(tail) => format!("QEMU's log {} ends with:\n{tail}", path.display()),
        Err(e) => format!("QEMU's log {}: {e}", path.display()),
    }
}

/// Makes the child get SIGKILL when the thread that forks it exits, and not start at all when the simulator
/// died before that was set up.
fn die_with_parent(command: &mut Command) {
    let parent = std::process::id();
    // SAFETY: between fork and exec the closure only makes async-signal-safe system calls (prctl, getppid).
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() as u32 != parent {
                return Err(std::io::Error::other("the simulator has exited"));
            }
            Ok(())
        });
    }
}

/// A command for the spawner thread and where its result goes.
type SpawnJob = (Command, oneshot::Sender<std::io::Result<Child>>);

/// The thread every QEMU is forked from (see the module documentation); it lives until the process exits.
static SPAWNER: Mutex<Option<mpsc::Sender<SpawnJob>>> = Mutex::new(None);

/// Spawns `command` on the spawner thread.
async fn spawn(command: Command) -> Result<Child, String> {
    let (reply, spawned) = oneshot::channel();
    {
        let mut spawner = SPAWNER.lock().unwrap_or_else(|e| e.into_inner());
        if spawner.is_none() {
            let (sender, jobs) = mpsc::channel::<SpawnJob>();
            std::thread::Builder::new()
                .name("qemu-spawner".into())
                .spawn(move || {
                    for (mut command, reply) in jobs {
                        // Nobody waits for a QEMU whose start was cancelled: it must not run on.
                        if let Err(Ok(child)) = reply.send(command.spawn()) {
                            kill_and_reap(child);
                        }
                    }
                })
                .map_err(|e| format!("cannot start the QEMU spawner thread: {e}"))?;
            *spawner = Some(sender);
        }
        let sender = spawner.as_ref().expect("the spawner was just set");
        sender.send((command, reply)).map_err(|_| "the QEMU spawner thread is gone".to_string())?;
    }
    spawned.await.map_err(|_| "the QEMU spawner thread is gone".to_string())?.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Backend;
    use tempfile::TempDir;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const READY_MARKER: &[u8] = b"NATIVEVNC-GUEST-READY\n";
    /// Under TCG the guest boots in 15-20 s on an idle machine; leave room for a busy one.
    const BOOT_TIMEOUT: Duration = Duration::from_secs(120);

    /// The guest of `tools/build-guest` (`$NATIVEVNC_GUEST_DIR`, default build/guest in the repository) and a
    /// fresh directory for sockets and logs. Panics when the guest has not been built.
    fn settings() -> (GuestSettings, TempDir) {
        let dir = std::env::var_os("NATIVEVNC_GUEST_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../build/guest"));
        for file in ["vmlinuz", "initrd.gz"] {
            let path = dir.join(file);
            assert!(path.is_file(), "{} is missing: run tools/build-guest first", path.display());
        }
        let tmp = tempfile::tempdir().unwrap();
        let settings = GuestSettings {
            qemu: "qemu-system-x86_64".into(),
            kernel: dir.join("vmlinuz"),
            initrd: dir.join("initrd.gz"),
            qmp_dir: tmp.path().join("qmp"),
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        (settings, tmp)
    }

    fn config(moid: &str, remote_display: Option<RemoteDisplay>, serial_port: Option<u16>) -> GuestConfig {
        GuestConfig {
            moid: moid.into(),
            name: format!("vm {moid}, a test"),
            memory_mb: 128,
            remote_display,
            serial_port,
        }
    }

    fn free_port() -> u16 {
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port()
    }

    /// The security types a VNC server offers to an RFB 3.8 client.
    async fn security_types(addr: &str) -> Vec<u8> {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut version = [0; 12];
        stream.read_exact(&mut version).await.unwrap();
        assert_eq!(&version, b"RFB 003.008\n");
        stream.write_all(b"RFB 003.008\n").await.unwrap();
        let mut types = vec![0; usize::from(stream.read_u8().await.unwrap())];
        stream.read_exact(&mut types).await.unwrap();
        types
    }

    /// A complete RFB login; returns the desktop name.
    async fn login(addr: &str, password: Option<&str>) -> Result<String, String> {
        let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let backend = Backend::start(stream, password.map(str::to_string), Duration::from_secs(10)).await?;
        Ok(backend.name().to_string())
    }

    async fn wait_until_accepting(addr: &str) {
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect(addr).await.is_err() {
            assert!(Instant::now() < deadline, "{addr} accepts no connection");
            tokio::time::sleep(POLL).await;
        }
    }

    /// A client of the guest's serial port.
    struct Serial {
        stream: TcpStream,
        seen: Vec<u8>,
    }

    impl Serial {
        async fn connect(port: u16) -> Serial {
            let addr = format!("127.0.0.1:{port}");
            wait_until_accepting(&addr).await;
            Serial { stream: TcpStream::connect(&addr).await.unwrap(), seen: Vec::new() }
        }

        async fn expect(&mut self, needle: &[u8], timeout: Duration) {
            let deadline = tokio::time::Instant::now() + timeout;
            while !self.seen.windows(needle.len()).any(|w| w == needle) {
                let mut buf = [0; 4096];
                let read = tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await;
                let n = read.unwrap_or_else(|_| {
                    let tail = String::from_utf8_lossy(&self.seen[self.seen.len().saturating_sub(2000)..]);
                    panic!(
                        "no {:?} on the serial port within {timeout:?}; got:\n{tail}",
                        String::from_utf8_lossy(needle)
                    )
                });
                let n = n.unwrap();
                assert_ne!(n, 0, "the serial port closed");
                self.seen.extend_from_slice(&buf[..n]);
            }
        }

        /// Runs a command on the guest's control shell and waits for `expected` in its output.
        async fn run(&mut self, command: &str, expected: &str) {
            self.stream.write_all(format!("{command}\n").as_bytes()).await.unwrap();
            self.expect(expected.as_bytes(), Duration::from_secs(30)).await;
        }
    }

    fn alive(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')))
    }

    fn command_line(pid: u32) -> Vec<String> {
        let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        raw.split(|&b| b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect()
    }

    /// ESXi 6.5/6.7: the built-in VNC server with a password on the host's address, and the serial port.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn remote_display_with_password_and_serial_port() {
        let (settings, tmp) = settings();
        let (vnc_port, serial_port) = (free_port(), free_port());
        let display = RemoteDisplay { port: vnc_port, password: Some("nots3cr3t".into()) };
        let config = config("17", Some(display), Some(serial_port));
        let vnc = format!("127.0.0.1:{vnc_port}");

        let mut guest = Guest::launch(&settings, &config).await.unwrap();
        let mut serial = Serial::connect(serial_port).await;
        wait_until_accepting(&vnc).await;
        let early = login(&vnc, Some("nots3cr3t")).await.unwrap_err();
        assert!(early.contains("wrong VNC password"), "before the password is set QEMU refuses logins: {early}");
        guest.configure(&config).await.unwrap();

        assert_eq!(guest.console(), Console { addr: vnc.clone(), password: Some("nots3cr3t".into()) });
        assert_eq!(security_types(&vnc).await, [2], "VNC authentication only");
        assert_eq!(login(&vnc, Some("nots3cr3t")).await.unwrap(), "QEMU (vm 17, a test)");
        assert!(login(&vnc, Some("nots3cr3")).await.is_ok(), "only the first 8 characters count");
        let wrong = login(&vnc, Some("nots3cr4")).await.unwrap_err();
        assert!(wrong.contains("wrong VNC password"), "{wrong}");

        let qmp_path = tmp.path().join("qmp/17.sock");
        assert_eq!(guest.qmp_path(), qmp_path);
        let mut qmp = Qmp::connect(&qmp_path, Duration::from_secs(5)).await.unwrap();
        assert_eq!(qmp.execute("query-status", None).await.unwrap()["status"], "running");
        drop(qmp);

        serial.expect(READY_MARKER, BOOT_TIMEOUT).await;
        serial.run("echo serial-$((6 * 7))", "serial-42\n").await;
        drop(serial);
        let mut again = Serial::connect(serial_port).await;
        again.run("echo again-$((6 * 7))", "again-42\n").await;

        let pid = guest.pid().unwrap();
        let args = command_line(pid);
        let joined = args.join(" ");
        assert!(joined.contains("-accel tcg") && !joined.contains("kvm"), "{joined}");
        assert!(args.windows(2).any(|a| a == ["-append", KERNEL_APPEND]), "{joined}");
        assert!(!joined.contains("nots3cr3t"), "no password on QEMU's command line");
        let log_path = tmp.path().join("qmp/17.log");
        assert_eq!(guest.log_path(), log_path);

        guest.stop().await;
        assert!(!alive(pid), "QEMU {pid} still runs after stop");
        assert!(!qmp_path.exists(), "stop removes the QMP socket");
        assert!(!std::fs::read_to_string(&log_path).unwrap().contains("nots3cr3t"));
        drop(again);
    }

    /// ESXi 7+: no built-in VNC server; the console is an internal endpoint without a password, no serial port.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn internal_console_without_serial_port() {
        let (settings, tmp) = settings();
        let guest = Guest::start(&settings, &config("vm-3", None, None)).await.unwrap();
        let console = guest.console();
        assert_eq!(console.password, None);
        let (host, port) = console.addr.rsplit_once(':').unwrap();
        let port: u16 = port.parse().unwrap();
        assert_eq!(host, "127.0.0.1");
        assert!(!VNC_PUBLIC.contains(&port), "{port} is where os-autoinst or ESXi's VNC servers would be");
        assert_eq!(security_types(&console.addr).await, [1], "no authentication");
        assert_eq!(login(&console.addr, None).await.unwrap(), "QEMU (vm vm-3, a test)");

        let pid = guest.pid().unwrap();
        let args = command_line(pid);
        assert!(args.windows(2).any(|a| a == ["-serial", "none"]), "{args:?}");
        assert!(tmp.path().join("qmp/vm-3.sock").exists());
        guest.stop().await;
        assert!(!alive(pid));
        assert!(!tmp.path().join("qmp/vm-3.sock").exists());
    }

    #[tokio::test]
    async fn dropping_the_guest_kills_qemu() {
        let (settings, tmp) = settings();
        let guest = Guest::start(&settings, &config("4", None, None)).await.unwrap();
        let pid = guest.pid().unwrap();
        drop(guest);
        let deadline = Instant::now() + KILL_WAIT;
        while Path::new(&format!("/proc/{pid}")).exists() {
            assert!(Instant::now() < deadline, "QEMU {pid} outlived its Guest or was not reaped");
            tokio::time::sleep(POLL).await;
        }
        assert!(!tmp.path().join("qmp/4.sock").exists());
    }

    #[tokio::test]
    async fn start_errors() {
        let (settings, tmp) = settings();
        let low = RemoteDisplay { port: 5899, password: None };
        let e = Guest::start(&settings, &config("5", Some(low), None)).await.err().unwrap();
        assert_eq!(
            e,
            "guest 5: RemoteDisplay.vnc.port 5899 is below 5900: QEMU's VNC server listens on 5900 + display"
        );
        assert!(!tmp.path().join("qmp/5.log").exists(), "no QEMU was started");

        let e = Guest::start(&settings, &config("a/b", None, None)).await.err().unwrap();
        assert_eq!(e, "guest 'a/b': a managed object id must be usable as a file name");

        let missing = GuestSettings { kernel: tmp.path().join("nope"), ..settings.clone() };
        let e = Guest::start(&missing, &config("6", None, None)).await.err().unwrap();
        assert!(e.starts_with("guest 6: kernel ") && e.ends_with("(built by tools/build-guest)"), "{e}");

        // QEMU cannot listen on an address the machine does not have: it exits, and the error quotes its log.
        let elsewhere = GuestSettings { host: "192.0.2.1".parse().unwrap(), ..settings.clone() };
        let display = RemoteDisplay { port: free_port(), password: Some("pw".into()) };
        let e = Guest::start(&elsewhere, &config("7", Some(display), None)).await.err().unwrap();
        assert!(e.starts_with("guest 7: QEMU exited"), "{e}");
        assert!(e.contains("QEMU's log") && e.contains("Cannot assign requested address"), "{e}");
        assert!(!tmp.path().join("qmp/7.sock").exists());
    }

    /// Set to a directory, the next test is the simulator that gets SIGKILLed: it starts a guest, prints
    /// `QEMU-PID <pid>` (after libtest's `test NAME ... `) and sleeps.
    const PDEATHSIG_HELPER: &str = "WEBMKS_SIM_PDEATHSIG_HELPER_DIR";

    /// Not a test on its own: the child process of [`qemu_dies_with_a_killed_simulator`] (returns at once
    /// otherwise).
    #[tokio::test]
    async fn pdeathsig_helper() {
        let Some(dir) = std::env::var_os(PDEATHSIG_HELPER) else { return };
        let (settings, _tmp) = settings();
        let settings = GuestSettings { qmp_dir: dir.into(), ..settings };
        let guest = Guest::start(&settings, &config("8", None, None)).await.unwrap();
        println!("QEMU-PID {}", guest.pid().unwrap());
        tokio::time::sleep(Duration::from_secs(60)).await;
    }

    /// QEMU dies with the simulator even when the simulator is SIGKILLed (and cannot clean up).
    #[test]
    fn qemu_dies_with_a_killed_simulator() {
        use std::io::BufRead;
        let tmp = tempfile::tempdir().unwrap();
        let mut simulator = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "guest::tests::pdeathsig_helper", "--nocapture", "--test-threads=1"])
            .env(PDEATHSIG_HELPER, tmp.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = std::io::BufReader::new(simulator.stdout.take().unwrap());
        let pid = stdout
            .lines()
            .map_while(Result::ok)
            .find_map(|line| line.rsplit_once("QEMU-PID ").map(|(_, p)| p.trim().parse::<u32>().unwrap()))
            .expect("the helper printed QEMU's pid");
        assert!(alive(pid));
        simulator.kill().unwrap();
        simulator.wait().unwrap();
        let deadline = Instant::now() + KILL_WAIT;
        while alive(pid) {
            assert!(Instant::now() < deadline, "QEMU {pid} outlived the SIGKILLed simulator");
            std::thread::sleep(POLL);
        }
    }
}
