//! The `--url` argument: which server, and how to log in.

use nativevnc::error::{Error, Result};
use percent_encoding::percent_decode_str;
use url::Url;

/// A VNC server to connect to.
#[derive(Clone, PartialEq, Eq)]
pub enum Target {
    /// `vnc://[:PASSWORD@]HOST[:PORT]`.
    Vnc { host: String, port: u16, password: Option<String> },
    /// `webmks+https://USER:PASSWORD@HOST[:PORT]/VM` (or `https://…`): a vSphere VM's console; the URL is
    /// parsed by the core, which also knows the forms naming the VM.
    Webmks { url: String, password: Option<String> },
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Vnc { host, port, password } => {
                let password = if password.is_some() { "<hidden>" } else { "none" };
                write!(f, "Vnc({host}:{port}, password: {password})")
            }
            Target::Webmks { url, .. } => match Url::parse(url) {
                Ok(u) => write!(f, "Webmks({}:{})", u.host_str().unwrap_or(""), u.port().unwrap_or(443)),
                Err(_) => f.write_str("Webmks(<invalid URL>)"),
            },
        }
    }
}

impl Target {
    /// Parses `--url`; `env_password` (NATIVEVNC_PASSWORD) is used when a vnc:// URL has no password, and
    /// replaces the vSphere password of a webmks URL.
    pub fn parse(s: &str, env_password: Option<String>) -> Result<Target> {
        if !s.contains("://") {
            return Err(no_scheme(s));
        }
        let url = Url::parse(s).map_err(|e| Error::usage(format!("invalid URL: {e}")))?;
        match url.scheme() {
            "vnc" => {}
            "webmks+https" | "https" => return Ok(Target::Webmks { url: s.to_string(), password: env_password }),
            other => {
                return Err(Error::usage(format!(
                    "unsupported URL scheme '{other}': use vnc://HOST:PORT or webmks+https://USER:PASSWORD@HOST/VM"
                )))
            }
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| Error::usage("the URL names no host: use vnc://HOST:PORT"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
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
            None => env_password,
        };
        Ok(Target::Vnc { host, port: url.port().unwrap_or(5900), password })
    }
}

/// The error for `--url` without a scheme, such as `127.0.0.1:5901` (or `vnc:` without the slashes): the URL to
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

#[cfg(test)]
mod tests {
    use super::*;

    fn vnc(t: Target) -> (String, u16, Option<String>) {
        match t {
            Target::Vnc { host, port, password } => (host, port, password),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_hosts_ports_and_passwords() {
        assert_eq!(vnc(Target::parse("vnc://127.0.0.1:5901", None).unwrap()), ("127.0.0.1".into(), 5901, None));
        let t = vnc(Target::parse("vnc://:s%40cret@example.org", None).unwrap());
        assert_eq!(t, ("example.org".into(), 5900, Some("s@cret".into())));
        let t = vnc(Target::parse("vnc://[::1]:5905", Some("env".into())).unwrap());
        assert_eq!(t, ("::1".into(), 5905, Some("env".into())));
    }

    #[test]
    fn webmks_urls_go_to_the_core() {
        for url in ["webmks+https://root:pw@esx:8443/1", "https://root:pw@esx/?name=sut"] {
            let t = Target::parse(url, Some("env".into())).unwrap();
            assert_eq!(t, Target::Webmks { url: url.into(), password: Some("env".into()) });
        }
    }

    #[test]
    fn rejects_what_it_cannot_use() {
        for bad in ["http://host:5900", "vnc://", "vnc://host:5900/path", "not a url", "vnc://host:99999"] {
            assert!(Target::parse(bad, None).is_err(), "{bad}");
        }
    }

    fn usage_message(url: &str) -> String {
        let e = Target::parse(url, None).unwrap_err();
        assert_eq!(e.kind(), nativevnc::error::ErrorKind::Usage, "{url}: {e}");
        e.message().to_owned()
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
        for url in ["vnc://:hunter2@h:1", "webmks+https://root:hunter2@h/1"] {
            let t = Target::parse(url, None).unwrap();
            assert!(!format!("{t:?}").contains("hunter2"), "{t:?}");
        }
    }
}
