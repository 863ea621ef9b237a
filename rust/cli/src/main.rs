//! `nativevnc`: take a screenshot, type text or press keys on a VNC server or a VMware webmks console
//! from the shell; print a webmks ticket URL; let any VNC viewer look at a webmks console.

mod proxy;
mod target;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread::sleep;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use nativevnc::client::{Client, ConnectOptions, LogLine, Retry};
use nativevnc::encoding;
use nativevnc::error::{Error, ErrorKind, Result};
use nativevnc::handshake::Credentials;
use nativevnc::keys::{self, ChordTiming};
use nativevnc::webmks::{Webmks, WebmksSettings};

use target::Target;

/// Seconds `type` and `key` wait for the first screen before typing.
const SCREEN_TIMEOUT: f64 = 10.0;

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

`nativevnc COMMAND --help` describes each command's options (type: escapes; key: key names).

Exit status: 0 success, 1 the server could not be reached or the connection failed, 2 usage or
configuration error, 3 authentication failed.";

const TYPE_HELP: &str = "\
Backslash escapes work as in printf: \\n presses Return, \\t Tab, \\b Backspace, \\e Escape, and \\\\ types
one backslash; any other backslash is an error. With --literal the text is typed as it is. Either way, a
newline or tab character in the text presses Return or Tab.

Only characters that a US keyboard types can be typed: printable ASCII (uppercase letters and shifted
punctuation are typed with Shift held).

Example: nativevnc type --url vnc://:PASSWORD@HOST:PORT 'echo hello\\n'";

const KEY_HELP: &str = "\
Key names: esc, ret, tab, spc, backspace, delete, insert, home, end, pgup, pgdn, up, down, left, right,
f1 to f12, shift, ctrl, alt, altgr, meta, super, caps, sysrq, minus, equal, or one printable ASCII
character (A is Shift with a). A chord joins names with '-': the keys are pressed in order and released in
reverse.

Examples: ret, ctrl-alt-f2, alt-sysrq-b, shift-tab, ctrl-c";

#[derive(Parser)]
#[command(name = "nativevnc", version, about = "Screenshots, typing and keys over VNC", after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write the server's screen to a file: PNG for a name ending in .png, PPM for .ppm.
    Screenshot {
        /// The file to write, FILE.png or FILE.ppm.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Seconds to wait for the screen after connecting.
        #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
        timeout: f64,
        #[command(flatten)]
        server: Server,
    },
    /// Type text as os-autoinst's type_string does: 'echo hello\n' types the command and presses Return.
    #[command(after_help = TYPE_HELP)]
    Type {
        /// Keys per second.
        #[arg(long, default_value_t = 30.0, value_name = "N")]
        rate: f64,
        /// Type the text as it is: a backslash is typed as a backslash.
        #[arg(long)]
        literal: bool,
        /// The text to type, with the escapes \n (Return), \t (Tab), \b (Backspace), \e (Escape), \\ (a
        /// backslash).
        text: String,
        #[command(flatten)]
        server: Server,
    },
    /// Press and release a key chord with os-autoinst's key names, such as ret or ctrl-alt-f2.
    #[command(after_help = KEY_HELP)]
    Key {
        /// Keys per second (the chord is held for one key's time).
        #[arg(long, default_value_t = 30.0, value_name = "N")]
        rate: f64,
        /// The chord.
        keys: String,
        #[command(flatten)]
        server: Server,
    },
    /// Acquire a webmks ticket and print its wss:// URL (it works once, for a limited time).
    Ticket {
        #[command(flatten)]
        console: Console,
    },
    /// Let VNC viewers look at a webmks console: listen on TCP and, for every viewer, take a fresh ticket
    /// and pass the RFB bytes through. Prints the address it listens on.
    Proxy {
        /// Where to listen (port 0 picks a free one).
        #[arg(long, default_value = "127.0.0.1:5900", value_name = "ADDRESS:PORT")]
        listen: std::net::SocketAddr,
        /// Allow listening on an address other than loopback (anyone reaching it sees the console).
        #[arg(long)]
        allow_remote: bool,
        /// Seconds a viewer's webmks connection may take to open once its ticket is had.
        #[arg(long, default_value_t = 20.0, value_name = "SECONDS")]
        connect_timeout: f64,
        #[command(flatten)]
        console: Console,
    },
}

/// The screen to work on: a VNC server or a VM's webmks console.
#[derive(Args)]
struct Server {
    /// The VNC server, vnc://[:PASSWORD@]HOST[:PORT], or the webmks console,
    /// webmks+https://USER:PASSWORD@HOST[:PORT]/VM.
    #[arg(long, value_name = "URL")]
    url: String,
    /// Seconds to keep trying to connect (a server that refuses or cannot be reached is tried again).
    #[arg(long, default_value_t = 20.0, value_name = "SECONDS")]
    connect_timeout: f64,
    /// Encodings to offer, by name or number, comma-separated (default: ZRLE, Hextile, Zlib, CopyRect, RRE, Raw
    /// and the usual pseudo-encodings). Names: raw, copyrect, rre, hextile, zlib, tight, tightpng, trle, zrle;
    /// pseudo-encodings desktopsize, extendeddesktopsize, lastrect, cursor, pointertypechange, extkeyevent,
    /// ledstate, jpeg0 to jpeg9, compress0 to compress9, vmwcursor, vmwcursorstate, vmwcursorposition,
    /// vmwkeyrepeat, vmwledstate, vmwservercaps, vmwframestamp.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    encodings: Option<Vec<String>>,
    #[arg(long, env = "NATIVEVNC_PASSWORD", hide_env_values = true, hide = true)]
    password: Option<String>,
    #[command(flatten)]
    webmks: WebmksArgs,
}

/// A VM's webmks console, for `ticket` and `proxy`.
#[derive(Args)]
struct Console {
    /// The VM's webmks console, webmks+https://USER:PASSWORD@HOST[:PORT]/VM.
    #[arg(long, value_name = "URL")]
    url: String,
    #[arg(long, env = "NATIVEVNC_PASSWORD", hide_env_values = true, hide = true)]
    password: Option<String>,
    #[command(flatten)]
    webmks: WebmksArgs,
}

/// How webmks tickets are had and their consoles verified.
#[derive(Args)]
#[command(next_help_heading = "webmks options")]
struct WebmksArgs {
    /// Verify nothing about the API's and the console's TLS certificates (issuer, name, validity, key,
    /// handshake signature).
    #[arg(long)]
    insecure: bool,
    /// A PEM file of CA certificates to trust besides the system's.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<String>,
    /// The vSphere API certificate's SHA-1 or SHA-256 thumbprint (hex pairs), pinned; several,
    /// comma-separated, pin any of them (vCenter's and its hosts' for REST tickets).
    #[arg(long, value_name = "HEX[,HEX...]")]
    thumbprint: Option<String>,
    /// The vSphere API that gives tickets: soap (ESXi, vCenter), rest (vCenter 7.0 and later), or auto
    /// (SOAP, REST where the endpoint has no SOAP API).
    #[arg(long, value_name = "soap|rest|auto", default_value = "auto")]
    api: String,
    /// Addresses to connect to instead of tickets' hosts, NAME=ADDRESS,… (ADDRESS an IP address or a host
    /// name). Unmapped hosts that do not resolve are replaced by the API's address when the console is pinned
    /// to the ticket's thumbprints or --insecure is given.
    #[arg(long, value_name = "NAME=ADDRESS,...", default_value = "")]
    ticket_hosts: String,
    /// Failed ticket requests to retry (the VM may still be starting), as os-autoinst's
    /// VMWARE_VNC_OVER_WS_REQUEST_ATTEMPTS counts them.
    #[arg(long, default_value_t = 2, value_name = "N")]
    ticket_attempts: u32,
    /// Seconds between ticket requests.
    #[arg(long, default_value_t = 2.0, value_name = "SECONDS")]
    ticket_delay: f64,
}

impl WebmksArgs {
    /// The webmks console at `url`, with this command line's TLS and retry settings. Settings that cannot work
    /// (a CA file that cannot be used, no password) are usage errors here, before any ticket is asked for.
    fn console(&self, url: &str, password: Option<&str>) -> Result<Webmks> {
        let webmks = WebmksSettings {
            password,
            insecure: self.insecure,
            ca_file: self.ca_file.as_deref(),
            thumbprint: self.thumbprint.as_deref(),
            ticket_attempts: self.ticket_attempts,
            ticket_delay: seconds(self.ticket_delay, "--ticket-delay")?,
            hosts: Some(&self.ticket_hosts),
            api: Some(&self.api),
            ..WebmksSettings::new(url)
        }
        .build()?;
        if webmks.endpoint.password().is_empty() {
            return Err(Error::usage(
                "no password given for the vSphere API: write it into the URL, webmks+https://USER:PASSWORD@HOST/VM, \
                 or set NATIVEVNC_PASSWORD",
            ));
        }
        Ok(webmks)
    }
}

impl Console {
    /// The webmks console of the URL; a usage error for a vnc:// URL.
    fn webmks(&self) -> Result<Webmks> {
        match Target::parse(&self.url, self.password.clone())? {
            Target::Webmks { url, password } => self.webmks.console(&url, password.as_deref()),
            Target::Vnc { .. } => Err(Error::usage(
                "this needs a webmks URL, webmks+https://USER:PASSWORD@HOST[:PORT]/VM (a VNC server needs no ticket \
                 or proxy)",
            )),
        }
    }
}

impl Server {
    /// What to connect to, with the encodings asked for.
    fn options(&self) -> Result<ConnectOptions> {
        let mut options = match Target::parse(&self.url, self.password.clone())? {
            Target::Vnc { host, port, password } => {
                let mut options = ConnectOptions::new(host, port);
                options.credentials = Credentials::new(password);
                options
            }
            Target::Webmks { url, password } => ConnectOptions::webmks(self.webmks.console(&url, password.as_deref())?),
        };
        if let Some(names) = &self.encodings {
            options.config.encodings = names.iter().map(|n| parse_encoding(n)).collect::<Result<_>>()?;
        }
        Ok(options)
    }
}

/// An encoding of `--encodings`, by name or by the number of one this client knows.
fn parse_encoding(name: &str) -> Result<i32> {
    match encoding::parse(name) {
        Some(n) if encoding::name(n) != "unknown" => Ok(n),
        _ => Err(Error::usage(format!("unknown encoding '{name}': see --help for the names (or their numbers)"))),
    }
}

fn seconds(s: f64, what: &str) -> Result<Duration> {
    Duration::try_from_secs_f64(s).map_err(|_| Error::usage(format!("{what} must be a non-negative number of seconds")))
}

/// How often [`connect`] asks again for the first screen while it waits.
const SCREEN_REQUEST_INTERVAL: Duration = Duration::from_millis(250);

/// Connects, retrying refused or timed-out attempts until the connect timeout is used up, and waits for
/// the first screen, by which time the server has also said which extensions (scancodes) it accepts.
fn connect(server: &Server, screen_timeout: f64) -> Result<Client> {
    let mut client = connect_only(server)?;
    let deadline = Instant::now() + seconds(screen_timeout, "--timeout")?;
    client.request_update(false, None)?;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if client.wait_update(left.min(SCREEN_REQUEST_INTERVAL))? {
            return Ok(client);
        }
        if left.is_zero() {
            return Err(Error::timeout(format!("the server sent no screen within {screen_timeout} s")));
        }
        // A server may use up the request with an update that carries no pixels (TigerVNC answers a full
        // update request with the screen's size alone when the client takes ExtendedDesktopSize), and sends
        // the pixels for the next request, as viewers send one after every update.
        client.request_update(true, None)?;
    }
}

/// Connects; a failure that another attempt may cure is said at once (and again when it changes), then
/// retried every 500 ms until `--connect-timeout` has passed ([`Client::connect_until`]).
fn connect_only(server: &Server) -> Result<Client> {
    let mut options = server.options()?;
    let window = seconds(server.connect_timeout, "--connect-timeout")?;
    options.connect_timeout = window;
    let limit = server.connect_timeout;
    let mut client = Client::new();
    let mut said = String::new();
    let result = client.connect_until(&options, Retry::within(window, Duration::from_millis(500), true), |failure| {
        print_warnings(failure.log);
        if failure.error.message() != said {
            eprintln!("nativevnc: {}; trying again until {limit} s have passed (--connect-timeout)", failure.error);
            said = failure.error.message().to_owned();
        }
        ControlFlow::Continue(())
    });
    print_warnings(client.take_log());
    match result {
        Ok(_) => Ok(client),
        Err(e) if !said.is_empty() => Err(e.context(format!("no connection within {limit} s"))),
        Err(e) => Err(e),
    }
}

/// The warnings among the connection's log lines, on stderr.
fn print_warnings(log: Vec<LogLine>) {
    for line in log.into_iter().filter(|l| l.warning) {
        eprintln!("nativevnc: {}", line.message);
    }
}

/// Presses the chord's keys in order and releases them in reverse, as os-autoinst's map_and_send_key.
fn chord(client: &Client, keysyms: &[u32], key_time: Duration) -> Result<()> {
    let timing = ChordTiming::for_key_time(key_time);
    for &k in keysyms {
        client.key(k, true)?;
        sleep(timing.hold);
    }
    for &k in keysyms.iter().rev() {
        client.key(k, false)?;
        sleep(timing.after_release);
    }
    Ok(())
}

/// Checks that `out` names a format the screenshot can be written in.
fn check_image_name(out: &Path) -> Result<()> {
    match out.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("png" | "ppm") => Ok(()),
        _ => Err(Error::usage(format!(
            "--out {}: the file name must end in .png (PNG) or .ppm (PPM), the formats a screenshot is written in",
            out.display()
        ))),
    }
}

fn screenshot(server: &Server, out: &Path, timeout: f64) -> Result<()> {
    check_image_name(out)?;
    let client = connect(server, timeout)?;
    let image = client.snapshot()?.ok_or_else(|| Error::protocol("no screen"))?;
    image.write(out)?;
    println!("{}", out.display());
    Ok(())
}

fn delay_for(rate: f64) -> Result<Duration> {
    if !(rate > 0.0 && rate.is_finite()) {
        return Err(Error::usage("--rate must be a positive number of keys per second"));
    }
    seconds(1.0 / rate, "--rate")
}

/// The text with printf's escapes \n, \t, \b, \e and \\ replaced by the characters they stand for.
fn unescape(text: &str) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next() {
            Some('n') => '\n',
            Some('t') => '\t',
            Some('b') => '\x08',
            Some('e') => '\x1b',
            Some('\\') => '\\',
            Some(other) => {
                return Err(Error::usage(format!(
                    "unknown escape '\\{other}' in the text: \\n presses Return, \\t Tab, \\b Backspace, \\e Escape, \
                     \\\\ types a backslash; --literal types the text as it is"
                )))
            }
            None => {
                return Err(Error::usage(
                    "the text ends in a single backslash: write \\\\ to type a backslash, or give --literal",
                ))
            }
        });
    }
    Ok(out)
}

fn type_text(server: &Server, rate: f64, text: &str, literal: bool) -> Result<()> {
    let delay = delay_for(rate)?;
    let text = if literal { text.to_owned() } else { unescape(text)? };
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
    if keysyms.is_empty() {
        return Err(Error::usage(format!("no key in '{keys}': name a key or a chord, such as ret or ctrl-alt-f2")));
    }
    let client = connect(server, SCREEN_TIMEOUT)?;
    chord(&client, &keysyms, delay)?;
    client.flush(Duration::from_secs(10))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Screenshot { server, out, timeout } => screenshot(server, out, *timeout),
        Command::Type { server, rate, literal, text } => type_text(server, *rate, text, *literal),
        Command::Key { server, rate, keys } => press(server, *rate, keys),
        Command::Ticket { console } => console.webmks().and_then(|w| proxy::print_ticket(&w)),
        Command::Proxy { console, listen, allow_remote, connect_timeout } => console
            .webmks()
            .and_then(|w| proxy::run(*listen, *allow_remote, w, seconds(*connect_timeout, "--connect-timeout")?)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_printf_s() {
        assert_eq!(unescape(r"echo hello\n").unwrap(), "echo hello\n");
        assert_eq!(unescape(r"a\tb\\n\b\e").unwrap(), "a\tb\\n\x08\x1b");
        assert_eq!(unescape("line\n").unwrap(), "line\n");
        let e = unescape(r"C:\temp\x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Usage);
        assert!(e.message().starts_with(r"unknown escape '\x' in the text"), "{e}");
        assert!(unescape(r"end\").unwrap_err().message().contains("single backslash"));
    }

    #[test]
    fn encodings_must_be_known() {
        assert_eq!(parse_encoding("hextile").unwrap(), encoding::HEXTILE);
        assert_eq!(parse_encoding("-258").unwrap(), encoding::QEMU_EXT_KEY_EVENT);
        for bad in ["999", "h264", "jpeg10"] {
            assert_eq!(parse_encoding(bad).unwrap_err().kind(), ErrorKind::Usage, "{bad}");
        }
    }

    #[test]
    fn screenshots_are_png_or_ppm() {
        for good in ["a.png", "dir/b.PPM", "c.Png"] {
            assert!(check_image_name(Path::new(good)).is_ok(), "{good}");
        }
        for bad in ["x.jpg", "noext", "x.png.gz"] {
            assert_eq!(check_image_name(Path::new(bad)).unwrap_err().kind(), ErrorKind::Usage, "{bad}");
        }
    }
}
