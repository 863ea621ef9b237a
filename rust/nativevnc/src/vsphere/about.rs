//! What a vSphere endpoint says about itself (`ServiceContent.about`): product, version, API. It is read
//! with RetrieveServiceContent, which needs no login, so it can explain a console that cannot work before
//! any credentials are sent.

use std::time::Duration;

use super::session::Session;
use super::{parse_url, TicketError};
use crate::error::Error;
use crate::tls::Verification;

/// `ServiceContent.about`, the fields this client uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct About {
    /// E.g. "VMware ESXi 7.0.3 build-21930508".
    pub full_name: String,
    /// The product version, e.g. "7.0.3".
    pub version: String,
    /// The API version, e.g. "7.0.3.0".
    pub api_version: String,
    /// "HostAgent" for ESXi, "VirtualCenter" for vCenter.
    pub api_type: String,
    /// "embeddedEsx" or "esx" for ESXi, "vpx" for vCenter.
    pub product_line_id: String,
}

/// The first vSphere release without the hosts' built-in VNC server.
const NO_VNC_SINCE: u32 = 7;

impl About {
    /// The major version, if the version is readable.
    pub fn major(&self) -> Option<u32> {
        self.version.split('.').next()?.trim().parse().ok()
    }

    /// Whether the endpoint's hosts still have ESXi's built-in VNC server (`RemoteDisplay.vnc.*`): ESXi and
    /// vCenter before 7.0. vSphere 7.0 removed it; its consoles are reached only through webmks tickets.
    /// `None` when the version cannot be read.
    pub fn has_vnc_server(&self) -> Option<bool> {
        self.major().map(|major| major < NO_VNC_SINCE)
    }

    /// A name for messages: the full name, or the API type and version when the server gave no full name.
    pub fn describe(&self) -> String {
        match self.full_name.trim() {
            "" => format!("a vSphere endpoint ({} {})", self.api_type, self.version).replace(" )", ")"),
            name => name.to_owned(),
        }
    }
}

/// Asks the vSphere API at `authority` (`HOST` or `HOST:PORT`, port 443 by default) what it is, within
/// `timeout`. No credentials are sent; the certificate is not verified, since nothing secret is exchanged
/// and the answer only serves to explain things to the user.
pub async fn about(authority: &str, timeout: Duration) -> Result<About, Error> {
    let (endpoint, _) = parse_url(&format!("https://{authority}/"), Verification::Insecure)?;
    let attempt = async {
        let mut session = Session::new(&endpoint)?;
        Ok::<_, TicketError>(session.retrieve_service_content().await?.about)
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(result) => result.map_err(Error::from),
        Err(_) => Err(TicketError::Timeout(timeout).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn about(version: &str) -> About {
        About { version: version.into(), ..About::default() }
    }

    #[test]
    fn vnc_server_by_version() {
        assert_eq!(about("6.5.0").has_vnc_server(), Some(true));
        assert_eq!(about("6.7.3").has_vnc_server(), Some(true));
        assert_eq!(about("7.0.3").has_vnc_server(), Some(false));
        assert_eq!(about("8.0.2").has_vnc_server(), Some(false));
        assert_eq!(about("").has_vnc_server(), None);
        assert_eq!(about("x.y").major(), None);
    }

    #[test]
    fn descriptions() {
        let full = About { full_name: "VMware ESXi 7.0.3 build-1".into(), ..about("7.0.3") };
        assert_eq!(full.describe(), "VMware ESXi 7.0.3 build-1");
        let bare = About { api_type: "HostAgent".into(), ..about("7.0.3") };
        assert_eq!(bare.describe(), "a vSphere endpoint (HostAgent 7.0.3)");
    }

    #[tokio::test]
    async fn unreachable_endpoints_are_connect_errors() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let e = super::about(&format!("127.0.0.1:{port}"), Duration::from_secs(5)).await.unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::Connect, "{e}");
        let e = super::about("", Duration::from_secs(5)).await.unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::Usage, "{e}");
    }
}
