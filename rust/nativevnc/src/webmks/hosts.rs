//! Where to connect for a ticket whose host the client cannot reach by name.
//!
//! vSphere writes the ESXi host's own name into tickets, which clients outside its network often cannot
//! resolve. A user's map (`VMWARE_VNC_OVER_WS_HOSTS`, `--ticket-hosts`: `NAME=ADDRESS,…`) is consulted first,
//! whatever the verification. Failing that, a name that does not resolve is replaced by the vSphere API's
//! address, but only when the console's certificate is pinned to the ticket's thumbprints or not checked at
//! all: then the address cannot lead to a server the ticket did not name. Either way the TLS server name
//! and the `Host:` header stay the ticket's host, which is what the server expects.

use crate::error::{Error, Result};
use crate::tls::Verification;

/// The user's map from ticket hosts to the addresses to connect to instead; names compare ignoring case.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TicketHosts(Vec<(String, String)>);

impl TicketHosts {
    /// Parses `NAME=ADDRESS,…`; blanks around entries are ignored and an empty text is an empty map. An
    /// ADDRESS is an IP address or a host name, without a port.
    pub fn parse(text: &str) -> Result<TicketHosts> {
        let entries = text.split(',').map(str::trim).filter(|entry| !entry.is_empty());
        let parsed = entries.map(|entry| {
            let bad = |why: &str| Error::usage(format!("ticket hosts: {entry:?} {why}; write NAME=ADDRESS,…"));
            let (name, address) = entry.split_once('=').ok_or_else(|| bad("has no '='"))?;
            let (name, address) = (name.trim(), address.trim());
            if name.is_empty() || address.is_empty() {
                return Err(bad("needs a name and an address"));
            }
            let address = address.strip_prefix('[').and_then(|a| a.strip_suffix(']')).unwrap_or(address);
            if address.parse::<std::net::IpAddr>().is_err() && address.contains([':', '/', '=', ' ']) {
                return Err(bad("has an address that is neither an IP address nor a host name"));
            }
            Ok((name.to_owned(), address.to_owned()))
        });
        parsed.collect::<Result<_>>().map(TicketHosts)
    }

    /// The address `host` is mapped to, if any.
    pub fn get(&self, host: &str) -> Option<&str> {
        self.0.iter().find(|(name, _)| name.eq_ignore_ascii_case(host)).map(|(_, address)| address.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Where the WebSocket connects instead of the ticket's host, and the line that says so.
#[derive(Debug, PartialEq, Eq)]
pub struct Reroute {
    pub address: String,
    pub log: String,
}

/// Decides where to connect for the ticket's `host`: `None` for the host itself, a [`Reroute`] for a mapped
/// host or (when `resolves` is false and `verification` cannot be fooled by the address) for the API's
/// address `api_host`; a [`crate::error::ErrorKind::Setup`] error when the host does not resolve and nothing
/// may replace it (trying again will not help: the user must map the host).
pub fn reroute(
    host: &str,
    resolves: bool,
    verification: &Verification,
    hosts: &TicketHosts,
    api_host: &str,
) -> Result<Option<Reroute>> {
    if let Some(address) = hosts.get(host) {
        return Ok(Some(Reroute {
            address: address.to_owned(),
            log: format!("the ticket's host {host} is mapped to {address} (ticket hosts); connecting there"),
        }));
    }
    if resolves {
        return Ok(None);
    }
    let why = match verification {
        Verification::Pinned(_) => "the console is pinned to the ticket's certificate",
        Verification::Insecure => "TLS certificates are not verified",
        Verification::Verify { .. } => {
            return Err(Error::setup(format!(
                "the ticket's host {host} does not resolve; map it to an address the client can reach with \
                 VMWARE_VNC_OVER_WS_HOSTS={host}=ADDRESS (--ticket-hosts {host}=ADDRESS)"
            )))
        }
    };
    Ok(Some(Reroute {
        address: api_host.to_owned(),
        log: format!(
            "the ticket's host {host} does not resolve; connecting to the vSphere API's address {api_host} \
             instead ({why})"
        ),
    }))
}

/// Whether `host` resolves to at least one address (an IP address always does).
pub async fn resolves(host: &str, port: u16) -> bool {
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    tokio::net::lookup_host((host, port)).await.is_ok_and(|mut addresses| addresses.next().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::tls::Thumbprint;

    const SHA1: &str = "5A:2B:9C:10:44:E7:1F:3D:8A:6B:0C:91:2E:7F:55:AA:01:02:03:04";

    #[test]
    fn parses_maps() {
        let hosts = TicketHosts::parse(" esx1.example.com=10.0.0.5, ESX2 = esx2.lab ,esx3=[fd00::5],, ").unwrap();
        assert_eq!(hosts.get("esx1.example.com"), Some("10.0.0.5"));
        assert_eq!(hosts.get("Esx1.Example.Com"), Some("10.0.0.5"));
        assert_eq!(hosts.get("esx2"), Some("esx2.lab"));
        assert_eq!(hosts.get("esx3"), Some("fd00::5"));
        assert_eq!(hosts.get("esx4"), None);
        assert!(TicketHosts::parse("").unwrap().is_empty() && TicketHosts::parse(" , ").unwrap().is_empty());
        for (text, why) in [
            ("esx1", "\"esx1\" has no '='"),
            ("=10.0.0.5", "\"=10.0.0.5\" needs a name and an address"),
            ("esx1=", "\"esx1=\" needs a name and an address"),
            ("esx1=10.0.0.5:443", "\"esx1=10.0.0.5:443\" has an address that is neither"),
        ] {
            let e = TicketHosts::parse(text).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Usage);
            assert!(e.message().starts_with(&format!("ticket hosts: {why}")), "{e}");
        }
    }

    #[test]
    fn decides_where_to_connect() {
        let pinned = Verification::Pinned(vec![Thumbprint::parse(SHA1).unwrap()]);
        let ca = Verification::Verify { ca_file: None };
        let mapped = TicketHosts::parse("esx1.invalid=10.0.0.5").unwrap();
        let none = TicketHosts::default();
        for verification in [&pinned, &Verification::Insecure, &ca] {
            for resolves in [true, false] {
                let to = reroute("esx1.invalid", resolves, verification, &mapped, "api").unwrap().unwrap();
                assert_eq!(to.address, "10.0.0.5");
                assert_eq!(
                    to.log,
                    "the ticket's host esx1.invalid is mapped to 10.0.0.5 (ticket hosts); connecting there"
                );
                assert_eq!(reroute("esx1.invalid", true, verification, &none, "api").unwrap(), None);
            }
        }
        let to = reroute("esx1.invalid", false, &pinned, &none, "127.0.0.1").unwrap().unwrap();
        assert_eq!(to.address, "127.0.0.1");
        assert_eq!(
            to.log,
            "the ticket's host esx1.invalid does not resolve; connecting to the vSphere API's address 127.0.0.1 \
             instead (the console is pinned to the ticket's certificate)"
        );
        let to = reroute("esx1.invalid", false, &Verification::Insecure, &none, "vc").unwrap().unwrap();
        assert_eq!(to.address, "vc");
        assert!(to.log.ends_with("(TLS certificates are not verified)"), "{}", to.log);
        let e = reroute("esx1.invalid", false, &ca, &none, "vc").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Setup);
        assert_eq!(
            e.message(),
            "the ticket's host esx1.invalid does not resolve; map it to an address the client can reach with \
             VMWARE_VNC_OVER_WS_HOSTS=esx1.invalid=ADDRESS (--ticket-hosts esx1.invalid=ADDRESS)"
        );
    }

    #[tokio::test]
    async fn resolution() {
        assert!(resolves("127.0.0.1", 443).await && resolves("[::1]", 443).await);
        assert!(!resolves("esx1.invalid", 443).await);
    }
}
