//! The `--url` argument: which server, and how to log in.

use nativevnc::error::Result;
use nativevnc::transport::VncUrl;
use url::Url;

/// A VNC server to connect to.
#[derive(Clone, PartialEq, Eq)]
pub enum Target {
    /// `vnc://[:PASSWORD@]HOST[:PORT]`, parsed by the core ([`VncUrl`]).
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
    /// replaces the vSphere password of a webmks URL. Anything but a valid webmks URL is the core's to judge
    /// as a `vnc://` URL, whose errors say what to write instead.
    pub fn parse(s: &str, env_password: Option<String>) -> Result<Target> {
        if s.contains("://") && Url::parse(s).is_ok_and(|url| matches!(url.scheme(), "webmks+https" | "https")) {
            return Ok(Target::Webmks { url: s.to_string(), password: env_password });
        }
        let VncUrl { host, port, password } = VncUrl::parse(s)?;
        Ok(Target::Vnc { host, port, password: password.or(env_password) })
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
    fn vnc_urls_take_the_environment_password_when_they_have_none() {
        assert_eq!(vnc(Target::parse("vnc://127.0.0.1:5901", None).unwrap()), ("127.0.0.1".into(), 5901, None));
        let t = vnc(Target::parse("vnc://:s%40cret@example.org", Some("env".into())).unwrap());
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

    /// The messages are the core's (`VncUrl::parse`, tested there); an invalid https URL and one without
    /// slashes get them too.
    #[test]
    fn everything_else_is_judged_as_a_vnc_url() {
        for (url, start) in [
            ("http://host:5900", "unsupported URL scheme 'http': use vnc://HOST:PORT or webmks+https://"),
            ("https://bad host/1", "invalid URL: "),
            ("https:host", "'https:host' is not a URL: write vnc://https:host for a VNC server"),
            ("vnc://hunter2@127.0.0.1:5911", "a vnc:// URL has no user name: put a colon before the password"),
        ] {
            let e = Target::parse(url, None).unwrap_err();
            assert_eq!(e.kind(), nativevnc::error::ErrorKind::Usage, "{url}: {e}");
            assert!(e.message().starts_with(start) && !e.message().contains("hunter2"), "{url}: {e}");
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
