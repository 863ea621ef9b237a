//! `nativevnc`: take a screenshot, type text or press keys on a VNC server or a VMware webmks console
//! from the shell; print a webmks ticket URL; let any VNC viewer look at a webmks console.

mod proxy;
mod target;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread::sleep;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use nativevnc::client::{Client, ConnectOptions};
use nativevnc::encoding;
use nativevnc::error::{Error, ErrorKind, Result};
use nativevnc::handshake::Credentials;
use nativevnc::image::Image;
use nativevnc::keys;
use nativevnc::webmks::{self, TicketHosts, Webmks};

use target::Target;

/// How long `type` and `key` wait for the first screen before typing.
const SCREEN_TIMEOUT: Duration = Duration::from_secs(10);

const AFTER_HELP: &str = "\
URL: vnc://[:PASSWORD@]HOST[:PORT] (port 5900 if not given) for a VNC server, or
webmks+https://USER:PASSWORD@HOST[:PORT]/VM for the console of a VM on ESXi or vCenter (also https://...).
VM is the VM's managed object id; ?name=NAME, ?path=INVENTORY/PATH or ?uuid=BIOS-UUID find it instead.
Characters such as '@' in user names and passwords are percent-encoded (%40). The password can also come
from the NATIVEVNC_PASSWORD environment variable, which keeps it out of the process list.

webmks: every connection takes a fresh one-shot ticket from the vSphere API: SOAP's AcquireTicket (ESXi,
vCenter), or vCenter's REST console tickets (--api rest; --api auto, the default, uses REST only where there
is no SOAP API). The API's TLS certificate is verified against the system's CA certificates (plus --ca-file),
or pinned with --thumbprint; the console's certificate is then pinned to the thumbprints a SOAP ticket
carries (REST tickets carry none: the console is verified like the API). --insecure verifies nothing.
A ticket names the ESXi host to connect to, often by a name only the vSphere side resolves: --ticket-hosts
maps such names to addresses; without a mapping, a name that does not resolve is replaced by the API's
address when the console is pinned to the ticket's thumbprints (or with --insecure), and the log says so.

Exit status: 0 success, 1 the server could not be reached or the connection failed, 2 usage error,
3 authentication failed.";

#[derive(Parser)]
#[command(name = "nativevnc", version, about = "Screenshots, typing and keys over VNC", after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write the server's screen to a file (PNG, or PPM if the name ends in .ppm).
    Screenshot {
        #[command(flatten)]
        server: Server,
        /// The file to write.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Seconds to wait for the screen after connecting.
        #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
        timeout: f64,
    },
    /// Type text, character by character, as os-autoinst's type_string does ("\n" presses Return).
    Type {
        #[command(flatten)]
        server: Server,
        /// Keys per second.
        #[arg(long, default_value_t = 30.0, value_name = "N")]
        rate: f64,
        /// The text to type.
        text: String,
    },
    /// Press and release a key chord with os-autoinst's key names, such as ctrl-alt-f2 or ret.
    Key {
        #[command(flatten)]
        server: Server,
        /// Keys per second (the chord is held for one key's time).
        #[arg(long, default_value_t = 30.0, value_name = "N")]
        rate: f64,
        /// The chord.
        keys: String,
    },
    /// Acquire a webmks ticket and print its wss:// URL (it works once, for a limited time).
    Ticket {
        #[command(flatten)]
        server: Server,
    },
    /// Let VNC viewers look at a webmks console: listen on TCP and, for every viewer, take a fresh ticket
    /// and pass the RFB bytes through. Prints the address it listens on.
    Proxy {
        #[command(flatten)]
        server: Server,
        /// Where to listen (port 0 picks a free one).
        #[arg(long, default_value = "127.0.0.1:5900", value_name = "ADDRESS:PORT")]
        listen: std::net::SocketAddr,
        /// Allow listening on an address other than loopback (anyone reaching it sees the console).
        #[arg(long)]
        allow_remote: bool,
    },
}

#[derive(Args)]
struct Server {
    /// The VNC server, vnc://[:PASSWORD@]HOST[:PORT], or the webmks console,
    /// webmks+https://USER:PASSWORD@HOST[:PORT]/VM.
    #[arg(long, value_name = "URL")]
    url: String,
    /// Seconds to keep trying to connect.
    #[arg(long, default_value_t = 20.0, value_name = "SECONDS")]
    connect_timeout: f64,
    /// Encodings to offer, by name or number, comma-separated (default: ZRLE, Hextile, Zlib, CopyRect,
    /// RRE, Raw and the usual pseudo-encodings).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    encodings: Option<Vec<String>>,
    #[arg(long, env = "NATIVEVNC_PASSWORD", hide_env_values = true, hide = true)]
    password: Option<String>,
    /// webmks: verify nothing about the API's and the console's TLS certificates (issuer, name, validity, key,
    /// handshake signature).
    #[arg(long)]
    insecure: bool,
    /// webmks: a PEM file of CA certificates to trust besides the system's.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<String>,
    /// webmks: the vSphere API certificate's SHA-1 or SHA-256 thumbprint (hex pairs), pinned; several,
    /// comma-separated, pin any of them (vCenter's and its hosts' for REST tickets).
    #[arg(long, value_name = "HEX[,HEX...]")]
    thumbprint: Option<String>,
    /// webmks: the vSphere API that gives tickets: soap (ESXi, vCenter), rest (vCenter 7.0 and later), or auto
    /// (SOAP, REST where the endpoint has no SOAP API).
    #[arg(long, value_name = "soap|rest|auto", default_value = "auto")]
    api: String,
    /// webmks: addresses to connect to instead of tickets' hosts, NAME=ADDRESS,… (ADDRESS an IP address or a
    /// host name). Unmapped hosts that do not resolve are replaced by the API's address when the console is
    /// pinned to the ticket's thumbprints or --insecure is given.
    #[arg(long, value_name = "NAME=ADDRESS,...", default_value = "")]
    ticket_hosts: String,
    /// webmks: failed ticket requests to retry (the VM may still be starting).
    #[arg(long, default_value_t = 2, value_name = "N")]
    ticket_retries: u32,
    /// webmks: seconds between ticket requests.
    #[arg(long, default_value_t = 2.0, value_name = "SECONDS")]
    ticket_delay: f64,
}

impl Server {
    /// The webmks console of a webmks URL; a usage error for a vnc:// URL.
    fn webmks(&self) -> Result<Webmks> {
        match Target::parse(&self.url, self.password.clone())? {
            Target::Webmks { url, password } => self.webmks_console(&url, password.as_deref()),
            Target::Vnc { .. } => Err(Error::usage("this needs a webmks URL: webmks+https://USER:PASSWORD@HOST/VM")),
        }
    }

    /// The webmks console at `url`, with this command line's TLS and retry settings.
    fn webmks_console(&self, url: &str, password: Option<&str>) -> Result<Webmks> {
        let tls = webmks::api_verification(self.insecure, self.ca_file.as_deref(), self.thumbprint.as_deref())?;
        let mut webmks = Webmks::from_url(url, None, password, tls)?;
        webmks.retries = self.ticket_retries;
        webmks.retry_delay = seconds(self.ticket_delay, "--ticket-delay")?;
        webmks.hosts = TicketHosts::parse(&self.ticket_hosts)?;
        webmks.endpoint.api = self.api.parse()?;
        Ok(webmks)
    }

    /// What to connect to, with the encodings asked for.
    fn options(&self) -> Result<ConnectOptions> {
        let mut options = match Target::parse(&self.url, self.password.clone())? {
            Target::Vnc { host, port, password } => {
                let mut options = ConnectOptions::new(host, port);
                options.credentials = Credentials::new(password);
                options
            }
            Target::Webmks { url, password } => ConnectOptions::webmks(self.webmks_console(&url, password.as_deref())?),
        };
        if let Some(names) = &self.encodings {
            options.config.encodings = names
                .iter()
                .map(|n| encoding::parse(n).ok_or_else(|| Error::usage(format!("unknown encoding '{n}'"))))
                .collect::<Result<_>>()?;
        }
        Ok(options)
    }
}

fn seconds(s: f64, what: &str) -> Result<Duration> {
    Duration::try_from_secs_f64(s).map_err(|_| Error::usage(format!("{what} must be a non-negative number of seconds")))
}

/// Connects, retrying refused or timed-out attempts until the connect timeout is used up, and waits for
/// the first screen, by which time the server has also said which extensions (scancodes) it accepts.
fn connect(server: &Server, screen_timeout: Duration) -> Result<Client> {
    let mut client = connect_only(server)?;
    client.request_update(false, None)?;
    if !client.wait_update(screen_timeout)? {
        return Err(Error::timeout(format!("the server sent no screen within {} s", screen_timeout.as_secs_f64())));
    }
    Ok(client)
}

fn connect_only(server: &Server) -> Result<Client> {
    let template = server.options()?;
    let deadline = Instant::now() + seconds(server.connect_timeout, "--connect-timeout")?;
    let mut client = Client::new();
    loop {
        let mut options = template.clone();
        options.connect_timeout = deadline.saturating_duration_since(Instant::now()).max(Duration::from_secs(1));
        let result = client.connect(options);
        for line in client.take_log().into_iter().filter(|l| l.warning) {
            eprintln!("nativevnc: {}", line.message);
        }
        match result {
            Ok(_) => return Ok(client),
            Err(e) if matches!(e.kind(), ErrorKind::Connect | ErrorKind::Timeout) && Instant::now() < deadline => {
                sleep(Duration::from_millis(500).min(deadline.saturating_duration_since(Instant::now())));
            }
            Err(e) => return Err(e),
        }
    }
}

fn screenshot(server: &Server, out: &Path, timeout: f64) -> Result<()> {
    let client = connect(server, seconds(timeout, "--timeout")?)?;
    let image = client.with_framebuffer(Image::from_framebuffer)?.ok_or_else(|| Error::protocol("no screen"))?;
    image.write(out)?;
    println!("{}", out.display());
    Ok(())
}

/// Presses the chord's keys in order and releases them in reverse, as os-autoinst's map_and_send_key.
fn chord(client: &Client, keysyms: &[u32], delay: Duration) -> Result<()> {
    let down = delay.mul_f64(0.5).min(Duration::from_millis(8));
    for &k in keysyms {
        client.key(k, true)?;
        sleep(down);
    }
    for &k in keysyms.iter().rev() {
        client.key(k, false)?;
        sleep(delay - down);
    }
    Ok(())
}

fn delay_for(rate: f64) -> Result<Duration> {
    if !(rate > 0.0 && rate.is_finite()) {
        return Err(Error::usage("--rate must be a positive number of keys per second"));
    }
    seconds(1.0 / rate, "--rate")
}

fn type_text(server: &Server, rate: f64, text: &str) -> Result<()> {
    let delay = delay_for(rate)?;
    let chords: Vec<Vec<u32>> =
        text.chars().filter_map(keys::key_name_for_char).map(|name| keys::chord(&name)).collect::<Result<_>>()?;
    let client = connect(server, SCREEN_TIMEOUT)?;
    for keysyms in &chords {
        chord(&client, keysyms, delay)?;
    }
    client.flush(Duration::from_secs(10))
}

fn press(server: &Server, rate: f64, keys: &str) -> Result<()> {
    let delay = delay_for(rate)?;
    let keysyms = keys::chord(keys)?;
    let client = connect(server, SCREEN_TIMEOUT)?;
    chord(&client, &keysyms, delay)?;
    client.flush(Duration::from_secs(10))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Screenshot { server, out, timeout } => screenshot(server, out, *timeout),
        Command::Type { server, rate, text } => type_text(server, *rate, text),
        Command::Key { server, rate, keys } => press(server, *rate, keys),
        Command::Ticket { server } => server.webmks().and_then(|w| proxy::print_ticket(&w)),
        Command::Proxy { server, listen, allow_remote } => server
            .webmks()
            .and_then(|w| proxy::run(*listen, *allow_remote, w, seconds(server.connect_timeout, "--connect-timeout")?)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nativevnc: {e}");
            ExitCode::from(match e.kind() {
                ErrorKind::Usage => 2,
                ErrorKind::Auth => 3,
                _ => 1,
            })
        }
    }
}
