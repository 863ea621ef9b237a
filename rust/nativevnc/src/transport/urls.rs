//! The URLs of the two transports: `vnc://` for a VNC server over TCP, `wss://` for a webmks ticket's
//! WebSocket, and `host:port` as both show it.

use percent_encoding::percent_decode_str;
use url::Url;

use crate::error::{Error, Result};

/// The port of a `vnc://` URL without one: display 0.
const VNC_PORT: u16 = 5900;

/// A VNC server named by `vnc://[:PASSWORD@]HOST[:PORT]` (port 5900 by default). VNC has no user names: the
/// password follows a colon, percent-encoded where needed.
#[derive(Clone, PartialEq, Eq)]
pub struct VncUrl {
    /// A name or an IP address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// The password, decoded; `None` when the URL has none.
    pub password: Option<String>,
}

impl VncUrl {
    /// Parses a `vnc://` URL. Every error is a usage error saying what to write instead, and none repeats
    /// the password.
    pub fn parse(s: &str) -> Result<VncUrl> {
        if !s.contains("://") {
            return Err(no_scheme(s));
        }
        let url = Url::parse(s).map_err(|e| Error::usage(format!("invalid URL: {e}")))?;
        if url.scheme() != "vnc" {
            return Err(Error::usage(format!(
                "unsupported URL scheme '{}': use vnc://HOST:PORT or webmks+https://USER:PASSWORD@HOST/VM",
                url.scheme()
            )));
        }
        let host = host_of(&url)
            .filter(|h| !h.is_empty())
            .ok_or_else(|| Error::usage("the URL names no host: use vnc://HOST:PORT"))?;
        if !matches!(url.path(), "" | "/") || url.query().is_some() {
            return Err(Error::usage("a vnc:// URL has no path or query: use vnc://[:PASSWORD@]HOST[:PORT]"));
        }
        if !url.username().is_empty() {
            return Err(Error::usage(
                "a vnc:// URL has no user name: put a colon before the password, vnc://:PASSWORD@HOST[:PORT]",
            ));
        }
        let password = match url.password() {
            Some(p) => Some(
                percent_decode_str(p)
                    .decode_utf8()
                    .map_err(|_| Error::usage("the password in the URL is not valid UTF-8"))?
                    .into_owned(),
            ),
            None => None,
        };
        Ok(VncUrl { host, port: url.port().unwrap_or(VNC_PORT), password })
    }
}

/// `Vnc(HOST:PORT, password: <hidden>)`: never the password.
impl std::fmt::Debug for VncUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let password = if self.password.is_some() { "<hidden>" } else { "none" };
        write!(f, "Vnc({}, password: {password})", host_port(&self.host, self.port))
    }
}

/// The error for a URL without a scheme, such as `127.0.0.1:5901` (or `vnc:` without the slashes): the URL to
/// write instead. The text is only repeated when it holds no `@`, so that no password is shown.
fn no_scheme(s: &str) -> Error {
    let webmks = "webmks+https://USER:PASSWORD@HOST[:PORT]/VM for a VM's console";
    if s.contains('@') || s.is_empty() {
        Error::usage(format!("the URL has no scheme: write vnc://[:PASSWORD@]HOST[:PORT] for a VNC server, {webmks}"))
    } else {
        let address = s.strip_prefix("vnc:").unwrap_or(s);
        Error::usage(format!("'{s}' is not a URL: write vnc://{address} for a VNC server, or {webmks}"))
    }
}

/// The parts of a `wss://` URL that are needed to connect, and a form of it that is safe to show.
pub(super) struct WssUrl {
    pub(super) host: String,
    pub(super) port: u16,
    /// `wss://host:port/…`: the path holds the ticket, a credential.
    pub(super) redacted: String,
}

impl WssUrl {
    pub(super) fn parse(url: &str) -> Result<WssUrl> {
        let parsed = Url::parse(url).map_err(|e| Error::usage(format!("invalid WebSocket URL: {e}")))?;
        if parsed.scheme() != "wss" {
            return Err(Error::usage(format!("a WebSocket URL must start with wss://, not {}://", parsed.scheme())));
        }
        let host = host_of(&parsed).ok_or_else(|| Error::usage("the WebSocket URL has no host"))?;
        let port = parsed.port().unwrap_or(443);
        let redacted = format!("wss://{}/…", host_port(&host, port));
        Ok(WssUrl { host, port, redacted })
    }
}

/// A URL's host as connecting and TLS want it: a name, or an IP address (IPv6 without brackets).
pub(crate) fn host_of(url: &Url) -> Option<String> {
    match url.host()? {
        url::Host::Ipv6(ip) => Some(ip.to_string()),
        host => Some(host.to_string()),
    }
}

/// The host and port of a `wss://` URL.
pub fn host_and_port(url: &str) -> Result<(String, u16)> {
    WssUrl::parse(url).map(|u| (u.host, u.port))
}

/// A `wss://` URL as it may be shown: `wss://host:port/…`, without the path, which holds the ticket.
pub fn redact(url: &str) -> String {
    WssUrl::parse(url).map_or_else(|_| "an invalid WebSocket URL".to_string(), |u| u.redacted)
}

/// `host:port`, with an IPv6 address in brackets (whether `host` had them or not).
pub fn host_port(host: &str, port: u16) -> String {
    let host = unbracket(host);
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// An IPv6 address without its brackets; any other host as it is.
pub(crate) fn unbracket(host: &str) -> &str {
    host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn wss_urls() {
        let u = WssUrl::parse("wss://esx.example:8443/ticket/secret123").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.redacted.as_str()), ("esx.example", 8443, "wss://esx.example:8443/…"));
        let u = WssUrl::parse("wss://[::1]/ticket/secret123").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.redacted.as_str()), ("::1", 443, "wss://[::1]:443/…"));
        let e = WssUrl::parse("ws://h/ticket/secret123").err().unwrap();
        assert_eq!(e.message(), "a WebSocket URL must start with wss://, not ws://");
        let e = WssUrl::parse("wss://bad host/ticket/secret123").err().unwrap();
        assert!(e.message().starts_with("invalid WebSocket URL") && !e.message().contains("secret"), "{e}");
    }

    #[test]
    fn host_port_brackets_ipv6_once() {
        assert_eq!(host_port("::1", 5900), "[::1]:5900");
        assert_eq!(host_port("[::1]", 5900), "[::1]:5900");
        assert_eq!(host_port("esx.example", 443), "esx.example:443");
    }

    fn vnc(url: &str) -> (String, u16, Option<String>) {
        let u = VncUrl::parse(url).unwrap();
        (u.host, u.port, u.password)
    }

    #[test]
    fn vnc_urls_give_host_port_and_password() {
        assert_eq!(vnc("vnc://127.0.0.1:5901"), ("127.0.0.1".into(), 5901, None));
        assert_eq!(vnc("vnc://:s%40cret@example.org"), ("example.org".into(), 5900, Some("s@cret".into())));
        assert_eq!(vnc("vnc://[::1]:5905"), ("::1".into(), 5905, None));
    }

    fn usage_message(url: &str) -> String {
        let e = VncUrl::parse(url).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Usage, "{url}: {e}");
        e.message().to_owned()
    }

    #[test]
    fn vnc_urls_refuse_what_they_cannot_use() {
        for bad in
            ["http://host:5900", "vnc://", "vnc://host:5900/path", "vnc://host?x=1", "not a url", "vnc://host:99999"]
        {
            usage_message(bad);
        }
        assert!(usage_message("http://h:1").starts_with("unsupported URL scheme 'http': use vnc://HOST:PORT or webmks"));
        assert_eq!(usage_message("vnc://:%FF@h"), "the password in the URL is not valid UTF-8");
    }

    #[test]
    fn a_missing_scheme_suggests_one() {
        assert!(
            usage_message("127.0.0.1:6602").starts_with("'127.0.0.1:6602' is not a URL: write vnc://127.0.0.1:6602")
        );
        assert!(usage_message("localhost").contains("write vnc://localhost for a VNC server, or webmks+https://"));
        assert!(usage_message("vnc:host:5901").contains("write vnc://host:5901 for"));
        let m = usage_message(":hunter2@host:5901");
        assert!(
            m.starts_with("the URL has no scheme: write vnc://[:PASSWORD@]HOST[:PORT]") && !m.contains("hunter2"),
            "{m}"
        );
    }

    #[test]
    fn a_user_name_is_a_forgotten_colon() {
        for url in ["vnc://hunter2@127.0.0.1:5911", "vnc://user:hunter2@host"] {
            let m = usage_message(url);
            assert!(m.contains("put a colon before the password, vnc://:PASSWORD@") && !m.contains("hunter2"), "{m}");
        }
    }

    #[test]
    fn debug_hides_the_password() {
        let u = VncUrl::parse("vnc://:hunter2@[fd00::1]:1").unwrap();
        assert_eq!(format!("{u:?}"), "Vnc([fd00::1]:1, password: <hidden>)");
    }
}
