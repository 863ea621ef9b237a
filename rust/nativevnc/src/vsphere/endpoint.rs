//! Where the vSphere API is, who logs in, which of its APIs gives the ticket, which virtual machine is meant,
//! and the URL form that says where, who and which machine at once.

use std::fmt;

use percent_encoding::percent_decode_str;
use url::Url;

use crate::error::Error;
use crate::tls::Verification;

/// Where the vSphere API is and who logs in. `Debug` does not show the password.
#[derive(Clone)]
pub struct Endpoint {
    /// Host name or IP address (IPv6 without brackets) of ESXi or vCenter.
    pub host: String,
    /// HTTPS port, usually 443.
    pub port: u16,
    /// The user to log in as, e.g. `root` or `administrator@vsphere.local`.
    pub username: String,
    password: String,
    /// How the server's certificate is checked.
    pub tls: Verification,
    /// Which API gives the ticket.
    pub api: Api,
}

/// Which vSphere API gives the console ticket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Api {
    /// The SOAP API at `/sdk`, ESXi's and vCenter's: `AcquireTicket("webmks")`.
    Soap,
    /// vCenter's REST API (7.0 and later): `POST /api/vcenter/vm/{vm}/console/tickets`, or its older `/rest`
    /// form.
    Rest,
    /// SOAP, and REST where the endpoint has no SOAP API (`/sdk` answers 404).
    #[default]
    Auto,
}

impl std::str::FromStr for Api {
    type Err = Error;

    /// `soap`, `rest` or `auto` in any case; empty is `auto`.
    fn from_str(s: &str) -> Result<Api, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "soap" => Ok(Api::Soap),
            "rest" => Ok(Api::Rest),
            "auto" | "" => Ok(Api::Auto),
            _ => Err(Error::usage(format!("unknown vSphere API {s:?}: expected soap, rest or auto"))),
        }
    }
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Api::Soap => "soap",
            Api::Rest => "rest",
            Api::Auto => "auto",
        })
    }
}

impl Endpoint {
    /// An endpoint from its parts, whose ticket comes from the API [`Api::Auto`] picks.
    pub fn new(
        host: impl Into<String>,
        port: u16,
        username: impl Into<String>,
        password: impl Into<String>,
        tls: Verification,
    ) -> Self {
        Endpoint { host: host.into(), port, username: username.into(), password: password.into(), tls, api: Api::Auto }
    }

    /// The password to log in with.
    pub fn password(&self) -> &str {
        &self.password
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .field("tls", &self.tls)
            .field("api", &self.api)
            .finish()
    }
}

/// Which virtual machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VmSelector {
    /// A managed object id: `vm-42` on vCenter, a small number on ESXi.
    MoId(String),
    /// An inventory path: `ha-datacenter/vm/NAME` on ESXi, `DATACENTER/vm/[FOLDER/]NAME` on vCenter.
    InventoryPath(String),
    /// The virtual machine's name; it must be unique.
    Name(String),
    /// The BIOS UUID (`config.uuid`, the SMBIOS system UUID).
    Uuid(String),
}

/// `managed object id "vm-42"`, `name "x"`, …: how error messages refer to the selector.
impl fmt::Display for VmSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VmSelector::MoId(id) => write!(f, "managed object id {id:?}"),
            VmSelector::InventoryPath(path) => write!(f, "inventory path {path:?}"),
            VmSelector::Name(name) => write!(f, "name {name:?}"),
            VmSelector::Uuid(uuid) => write!(f, "BIOS UUID {uuid:?}"),
        }
    }
}

/// Parses os-autoinst's URL form `https://user:pass@host[:port]/vm-id`, where vm-id is a managed object id,
/// user and password are percent-decoded and the user defaults to `root`; also the extensions
/// `https://user:pass@host/?name=NAME`, `?path=INVENTORY/PATH`, `?uuid=BIOS-UUID` and `?moid=ID`. The scheme
/// may also be `webmks+https`. A URL without a virtual machine yields `None` (the caller may fall back to
/// another setting, such as VIRSH_VM_ID).
///
/// Query values are form-decoded: a `+` is a space, write `%2B` for a plus sign. Errors are usage errors and
/// never contain the password.
pub fn parse_url(url: &str, tls: Verification) -> Result<(Endpoint, Option<VmSelector>), Error> {
    let invalid = |why: &str| Error::usage(format!("invalid vSphere URL: {why}"));
    let normalized = match url.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("webmks+https") => format!("https://{rest}"),
        _ => url.to_owned(),
    };
    let parsed = Url::parse(&normalized).map_err(|e| invalid(&e.to_string()))?;
    if parsed.scheme() != "https" {
        return Err(invalid(&format!("the scheme is {:?}, expected https or webmks+https", parsed.scheme())));
    }
    let host = crate::transport::host_of(&parsed).ok_or_else(|| invalid("there is no host"))?;
    let decode = |what: &str, value: &str| {
        percent_decode_str(value)
            .decode_utf8()
            .map(|decoded| decoded.into_owned())
            .map_err(|_| invalid(&format!("the {what} is not UTF-8 once percent-decoded")))
    };
    let username = match decode("user name", parsed.username())? {
        user if user.is_empty() => "root".to_owned(),
        user => user,
    };
    let password = decode("password", parsed.password().unwrap_or_default())?;

    let mut vm = None;
    let path = parsed.path().trim_matches('/');
    if !path.is_empty() {
        if path.contains('/') {
            return Err(invalid("the path must be a single managed object id, such as /vm-42 or /1"));
        }
        vm = Some(VmSelector::MoId(decode("virtual machine id", path)?));
    }
    for (key, value) in parsed.query_pairs() {
        let selector = match key.as_ref() {
            "name" => VmSelector::Name,
            "path" => VmSelector::InventoryPath,
            "uuid" => VmSelector::Uuid,
            "moid" => VmSelector::MoId,
            _ => return Err(invalid(&format!("unknown query parameter {key:?}; expected name, path, uuid or moid"))),
        };
        if value.is_empty() {
            return Err(invalid(&format!("the query parameter {key:?} is empty")));
        }
        if vm.is_some() {
            return Err(invalid("it names the virtual machine more than once"));
        }
        vm = Some(selector(value.into_owned()));
    }
    let port = parsed.port().unwrap_or(443);
    Ok((Endpoint::new(host, port, username, password, tls), vm))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn parse(url: &str) -> (Endpoint, Option<VmSelector>) {
        parse_url(url, Verification::Insecure).unwrap()
    }

    #[test]
    fn os_autoinst_form() {
        let (endpoint, vm) = parse("https://root:s3cret@esx1.example.com/42");
        assert_eq!((endpoint.host.as_str(), endpoint.port), ("esx1.example.com", 443));
        assert_eq!((endpoint.username.as_str(), endpoint.password()), ("root", "s3cret"));
        assert_eq!(vm, Some(VmSelector::MoId("42".into())));
        assert!(matches!(endpoint.tls, Verification::Insecure));
    }

    #[test]
    fn port_user_default_and_ipv6() {
        let (endpoint, vm) = parse("https://:pw@esx1:8443/vm-7/");
        assert_eq!((endpoint.host.as_str(), endpoint.port, endpoint.username.as_str()), ("esx1", 8443, "root"));
        assert_eq!(vm, Some(VmSelector::MoId("vm-7".into())));
        let (endpoint, _) = parse("https://u:p@[fd00::5]:444/1");
        assert_eq!((endpoint.host.as_str(), endpoint.port), ("fd00::5", 444));
        let (endpoint, _) = parse("https://10.0.0.5/1");
        assert_eq!((endpoint.host.as_str(), endpoint.username.as_str(), endpoint.password()), ("10.0.0.5", "root", ""));
    }

    #[test]
    fn percent_encoded_credentials() {
        let (endpoint, _) = parse("https://administrator%40vsphere.local:p%40ss%3Aw%2Fo%25rd@vc.example.com/vm-1");
        assert_eq!(endpoint.username, "administrator@vsphere.local");
        assert_eq!(endpoint.password(), "p@ss:w/o%rd");
        assert_eq!(endpoint.host, "vc.example.com");
    }

    #[test]
    fn query_forms_and_scheme_alias() {
        let cases = [
            ("https://u:p@vc/?name=my%20vm+1", VmSelector::Name("my vm 1".into())),
            ("https://u:p@vc/?path=DC1/vm/folder/my%2Bvm", VmSelector::InventoryPath("DC1/vm/folder/my+vm".into())),
            (
                "https://u:p@vc?uuid=4217a1b2-0000-1111-2222-333344445555",
                VmSelector::Uuid("4217a1b2-0000-1111-2222-333344445555".into()),
            ),
            ("https://u:p@vc/?moid=vm-9", VmSelector::MoId("vm-9".into())),
            ("webmks+https://u:p@vc/vm-3", VmSelector::MoId("vm-3".into())),
            ("WebMKS+HTTPS://u:p@vc/?name=x", VmSelector::Name("x".into())),
        ];
        for (url, expected) in cases {
            assert_eq!(parse(url).1, Some(expected), "{url}");
        }
    }

    #[test]
    fn missing_vm_is_none() {
        assert_eq!(parse("https://u:p@vc.example.com").1, None);
        assert_eq!(parse("https://u:p@vc.example.com/").1, None);
    }

    #[test]
    fn errors_are_usage_errors_without_the_password() {
        for (url, why) in [
            ("http://root:hunter2@esx/1", "the scheme is \"http\""),
            ("ftp://root:hunter2@esx/1", "the scheme is \"ftp\""),
            ("root:hunter2@esx/1", "invalid vSphere URL"),
            ("https://root:hunter2@/1", "empty host"),
            ("https://root:hunter2@esx:99999/1", "invalid port"),
            ("https://root:hunter2@esx/a/b", "single managed object id"),
            ("https://root:hunter2@esx/?vm=1", "unknown query parameter \"vm\""),
            ("https://root:hunter2@esx/?name=", "\"name\" is empty"),
            ("https://root:hunter2@esx/1?name=x", "more than once"),
            ("https://root:hunter2@esx/?name=x&uuid=y", "more than once"),
            ("https://root:hunter2%FF@esx/1", "password is not UTF-8"),
        ] {
            let e = parse_url(url, Verification::default()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Usage, "{url}");
            assert!(e.message().contains(why), "{url}: {e}");
            assert!(!e.message().contains("hunter2"), "{url}: {e}");
        }
    }

    #[test]
    fn api_names() {
        for (name, api) in [("soap", Api::Soap), ("REST", Api::Rest), (" auto ", Api::Auto), ("", Api::Auto)] {
            assert_eq!(name.parse::<Api>().unwrap(), api, "{name:?}");
        }
        assert_eq!(Api::Rest.to_string(), "rest");
        let e = "vapi".parse::<Api>().unwrap_err();
        assert_eq!(
            (e.kind(), e.message()),
            (ErrorKind::Usage, "unknown vSphere API \"vapi\": expected soap, rest or auto")
        );
    }

    #[test]
    fn debug_hides_the_password() {
        let (endpoint, _) = parse("https://root:hunter2@esx/1");
        let debug = format!("{endpoint:?}");
        assert!(!debug.contains("hunter2") && debug.contains("<hidden>") && debug.contains("esx"), "{debug}");
    }
}
