//! The `--url` argument: which server, and how to log in.

use nativevnc::error::{Error, Result};
use percent_encoding::percent_decode_str;
use url::Url;

/// A VNC server to connect to.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub password: Option<String>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let password = if self.password.is_some() { "<hidden>" } else { "none" };
        write!(f, "Target({}:{}, password: {password})", self.host, self.port)
    }
}

impl Target {
    /// Parses `vnc://[:PASSWORD@]HOST[:PORT]`; `fallback_password` is used when the URL has none.
    pub fn parse(s: &str, fallback_password: Option<String>) -> Result<Target> {
        let url = Url::parse(s).map_err(|e| Error::usage(format!("invalid URL: {e}")))?;
        if url.scheme() != "vnc" {
            return Err(Error::usage(format!("unsupported URL scheme '{}': use vnc://HOST:PORT", url.scheme())));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| Error::usage("the URL names no host: use vnc://HOST:PORT"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        if !matches!(url.path(), "" | "/") || url.query().is_some() {
            return Err(Error::usage("a vnc:// URL has no path or query: use vnc://[:PASSWORD@]HOST[:PORT]"));
        }
        let password = match url.password() {
            Some(p) => Some(
                percent_decode_str(p)
                    .decode_utf8()
                    .map_err(|_| Error::usage("the password in the URL is not valid UTF-8"))?
                    .into_owned(),
            ),
            None => fallback_password,
        };
        Ok(Target { host, port: url.port().unwrap_or(5900), password })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_ports_and_passwords() {
        let t = Target::parse("vnc://127.0.0.1:5901", None).unwrap();
        assert_eq!((t.host.as_str(), t.port, t.password), ("127.0.0.1", 5901, None));
        let t = Target::parse("vnc://:s%40cret@example.org", None).unwrap();
        assert_eq!((t.host.as_str(), t.port, t.password.as_deref()), ("example.org", 5900, Some("s@cret")));
        let t = Target::parse("vnc://[::1]:5905", Some("env".into())).unwrap();
        assert_eq!((t.host.as_str(), t.port, t.password.as_deref()), ("::1", 5905, Some("env")));
    }

    #[test]
    fn rejects_what_it_cannot_use() {
        for bad in ["http://host:5900", "vnc://", "vnc://host:5900/path", "not a url", "vnc://host:99999"] {
            assert!(Target::parse(bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_hides_the_password() {
        let t = Target::parse("vnc://:hunter2@h:1", None).unwrap();
        assert!(!format!("{t:?}").contains("hunter2"));
    }
}
