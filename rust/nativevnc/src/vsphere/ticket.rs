//! The VirtualMachineTicket that AcquireTicket returns, and what a webmks client makes of it.

use std::fmt;

use url::Url;

use super::soap::returnval;
use super::xml::Element;
use super::TicketError;
use crate::tls::{HashAlgorithm, Thumbprint};

/// A parsed VirtualMachineTicket. Its `Debug` shows neither the ticket nor the URL that contains it.
#[derive(Clone)]
pub struct Ticket {
    /// The one-time secret; it is the last path segment of the WebSocket URL.
    pub ticket: String,
    /// The ESXi host to connect to; may be missing, empty or a name only the vSphere side can resolve.
    pub host: Option<String>,
    /// The port on `host`; 0 or missing means 443.
    pub port: Option<u16>,
    /// SHA-1 thumbprint of the host's certificate, `AB:CD:…`.
    pub ssl_thumbprint: Option<String>,
    /// `(hashAlgorithm, thumbprint)` pairs of `certThumbprintList` (vSphere 7.0.3.1 and later).
    pub cert_thumbprints: Vec<(String, String)>,
    /// The ready-made `wss://…/ticket/…` URL (vSphere 7.0 and later).
    pub url: Option<String>,
    /// The virtual machine's configuration file, e.g. `[datastore1] vm/vm.vmx`.
    pub cfg_file: Option<String>,
}

impl Ticket {
    /// Parses the `returnval` of an AcquireTicket response.
    pub(crate) fn from_response(response: &Element) -> Result<Ticket, TicketError> {
        let ticket = returnval(response)?;
        let text = |name: &str| ticket.child_text(name).filter(|value| !value.is_empty()).map(str::to_owned);
        let port = match text("port") {
            Some(port) => Some(
                port.parse::<u16>()
                    .map_err(|_| TicketError::Malformed("the ticket's port is not a port number".into()))?,
            ),
            None => None,
        };
        let cert_thumbprints = ticket
            .children("certThumbprintList")
            .filter_map(|entry| {
                Some((entry.child_text("hashAlgorithm")?.to_owned(), entry.child_text("thumbprint")?.to_owned()))
            })
            .collect();
        Ok(Ticket {
            ticket: text("ticket").ok_or_else(|| TicketError::Malformed("the ticket response has no ticket".into()))?,
            host: text("host"),
            port,
            ssl_thumbprint: text("sslThumbprint"),
            cert_thumbprints,
            url: text("url"),
            cfg_file: text("cfgFile"),
        })
    }

    /// A ticket that is a complete `wss://HOST[:PORT]/ticket/TICKET` URL, as vCenter's REST API gives them: the
    /// ticket is the URL's last path segment; there are no thumbprints.
    pub(crate) fn from_url(url: &str) -> Result<Ticket, TicketError> {
        let malformed = |why: &str| TicketError::Malformed(format!("the console ticket {why}"));
        let parsed = Url::parse(url).map_err(|_| malformed("is not a URL"))?;
        if parsed.scheme() != "wss" {
            return Err(malformed(&format!("is a {:?} URL, not wss", parsed.scheme())));
        }
        let host = crate::transport::host_of(&parsed).ok_or_else(|| malformed("has no host"))?;
        let ticket = parsed.path_segments().and_then(Iterator::last).filter(|segment| !segment.is_empty());
        Ok(Ticket {
            ticket: ticket.ok_or_else(|| malformed("has no path"))?.to_owned(),
            host: Some(host),
            port: parsed.port_or_known_default(),
            ssl_thumbprint: None,
            cert_thumbprints: Vec::new(),
            url: Some(url.to_owned()),
            cfg_file: None,
        })
    }

    /// `url` if the server sent one, else `wss://HOST:PORT/ticket/TICKET`, where a missing or empty host is
    /// `api_host` (the host the ticket was acquired from), a missing or zero port is 443, and an IPv6 host is
    /// put in brackets.
    pub fn wss_url(&self, api_host: &str) -> String {
        if let Some(url) = self.url.as_deref().filter(|url| !url.is_empty()) {
            return url.to_owned();
        }
        let host = self.host.as_deref().filter(|host| !host.is_empty()).unwrap_or(api_host);
        let port = self.port.filter(|&port| port != 0).unwrap_or(443);
        format!("wss://{}/ticket/{}", crate::transport::host_port(host, port), self.ticket)
    }

    /// The thumbprints the ticket carries, parsed: `sslThumbprint` as SHA-1, `certThumbprintList` entries by
    /// their algorithm. Entries with an unknown algorithm, or whose length does not fit it, are skipped.
    pub fn thumbprints(&self) -> Vec<Thumbprint> {
        let ssl = self.ssl_thumbprint.as_deref().map(|thumbprint| (HashAlgorithm::Sha1, thumbprint));
        let listed = self.cert_thumbprints.iter().filter_map(|(algorithm, thumbprint)| {
            let algorithm = match algorithm.to_ascii_lowercase().replace('-', "").as_str() {
                "sha1" => HashAlgorithm::Sha1,
                "sha256" => HashAlgorithm::Sha256,
                _ => return None,
            };
            Some((algorithm, thumbprint.as_str()))
        });
        ssl.into_iter()
            .chain(listed)
            .filter_map(|(algorithm, thumbprint)| {
                Thumbprint::parse(thumbprint).ok().filter(|parsed| parsed.algorithm() == algorithm)
            })
            .collect()
    }
}

impl fmt::Debug for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticket")
            .field("ticket", &"<hidden>")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("ssl_thumbprint", &self.ssl_thumbprint)
            .field("cert_thumbprints", &self.cert_thumbprints)
            .field("url", &self.url.as_ref().map(|_| "<hidden>"))
            .field("cfg_file", &self.cfg_file)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vsphere::soap::{parse_response, tests::response};

    const SHA1: &str = "5A:2B:9C:10:44:E7:1F:3D:8A:6B:0C:91:2E:7F:55:AA:01:02:03:04";
    const SHA256: &str =
        "0F:1E:2D:3C:4B:5A:69:78:87:96:A5:B4:C3:D2:E1:F0:0F:1E:2D:3C:4B:5A:69:78:87:96:A5:B4:C3:D2:E1:F0";

    fn parse(returnval: &str) -> Result<Ticket, TicketError> {
        let body = format!(r#"<AcquireTicketResponse xmlns="urn:vim25">{returnval}</AcquireTicketResponse>"#);
        Ticket::from_response(&parse_response(200, &response(&body))?)
    }

    fn minimal(host: &str, port: &str) -> Ticket {
        parse(&format!(
            r#"<returnval xsi:type="VirtualMachineTicket"><ticket>52f0-secret-ticket</ticket><host>{host}</host>
<port>{port}</port></returnval>"#
        ))
        .unwrap()
    }

    #[test]
    fn parses_a_full_ticket() {
        let ticket = parse(&format!(
            r#"<returnval xsi:type="VirtualMachineTicket">
<ticket>52f0-secret-ticket</ticket><cfgFile>[datastore1] vm one/vm one.vmx</cfgFile>
<host>esx1.example.com</host><port>443</port><sslThumbprint>{SHA1}</sslThumbprint>
<certThumbprintList><thumbprint>{SHA256}</thumbprint><hashAlgorithm>sha256</hashAlgorithm></certThumbprintList>
<certThumbprintList><thumbprint>ab:cd</thumbprint><hashAlgorithm>sha512</hashAlgorithm></certThumbprintList>
<url>wss://esx1.example.com:443/ticket/52f0-secret-ticket</url>
</returnval>"#
        ))
        .unwrap();
        assert_eq!(ticket.ticket, "52f0-secret-ticket");
        assert_eq!(ticket.cfg_file.as_deref(), Some("[datastore1] vm one/vm one.vmx"));
        assert_eq!(ticket.host.as_deref(), Some("esx1.example.com"));
        assert_eq!(ticket.port, Some(443));
        assert_eq!(ticket.ssl_thumbprint.as_deref(), Some(SHA1));
        assert_eq!(
            ticket.cert_thumbprints,
            vec![("sha256".to_owned(), SHA256.to_owned()), ("sha512".to_owned(), "ab:cd".to_owned())]
        );
        assert_eq!(ticket.wss_url("vcenter.example.com"), "wss://esx1.example.com:443/ticket/52f0-secret-ticket");
        assert_eq!(ticket.thumbprints(), vec![Thumbprint::parse(SHA1).unwrap(), Thumbprint::parse(SHA256).unwrap()]);
        let debug = format!("{ticket:?}");
        assert!(!debug.contains("secret"), "{debug}");
        assert!(debug.contains("ticket: \"<hidden>\"") && debug.contains("esx1.example.com"), "{debug}");
    }

    #[test]
    fn builds_the_url_when_the_server_does_not() {
        let ticket = minimal("esx1", "902");
        assert_eq!((ticket.url.as_deref(), ticket.cfg_file.as_deref()), (None, None));
        assert!(ticket.thumbprints().is_empty());
        assert_eq!(ticket.wss_url("api"), "wss://esx1:902/ticket/52f0-secret-ticket");
        assert_eq!(minimal("", "443").wss_url("10.0.0.5"), "wss://10.0.0.5:443/ticket/52f0-secret-ticket");
        assert_eq!(minimal("esx1", "0").wss_url("api"), "wss://esx1:443/ticket/52f0-secret-ticket");
        assert_eq!(minimal("fd00::5", "443").wss_url("api"), "wss://[fd00::5]:443/ticket/52f0-secret-ticket");
        assert_eq!(minimal("", "0").wss_url("[fd00::1]"), "wss://[fd00::1]:443/ticket/52f0-secret-ticket");
        assert_eq!(minimal("", "0").wss_url("fd00::1"), "wss://[fd00::1]:443/ticket/52f0-secret-ticket");
        let bare = parse(r#"<returnval><ticket>t</ticket></returnval>"#).unwrap();
        assert_eq!((bare.host.as_deref(), bare.port), (None, None));
        assert_eq!(bare.wss_url("esx"), "wss://esx:443/ticket/t");
    }

    #[test]
    fn rest_ticket_urls() {
        let ticket = Ticket::from_url("wss://esx1.example.com/ticket/52f0-secret-ticket").unwrap();
        assert_eq!(ticket.ticket, "52f0-secret-ticket");
        assert_eq!((ticket.host.as_deref(), ticket.port), (Some("esx1.example.com"), Some(443)));
        assert!(ticket.thumbprints().is_empty());
        assert_eq!(ticket.wss_url("vc"), "wss://esx1.example.com/ticket/52f0-secret-ticket");
        let ticket = Ticket::from_url("wss://[fd00::5]:8443/ticket/t").unwrap();
        assert_eq!((ticket.host.as_deref(), ticket.port), (Some("fd00::5"), Some(8443)));
        for (url, why) in [
            ("https://esx1/ticket/t", "not wss"),
            ("wss://esx1/", "no path"),
            ("ticket/t", "not a URL"),
            ("wss://esx1/ticket/", "no path"),
        ] {
            let e = Ticket::from_url(url).map(drop).unwrap_err();
            assert!(matches!(&e, TicketError::Malformed(m) if m.contains(why)), "{url}: {e}");
        }
    }

    #[test]
    fn skips_thumbprints_of_the_wrong_length() {
        let mut ticket = minimal("esx1", "443");
        ticket.ssl_thumbprint = Some(SHA256.to_owned());
        ticket.cert_thumbprints =
            vec![("SHA-256".to_owned(), SHA256.to_owned()), ("sha256".to_owned(), SHA1.to_owned())];
        assert_eq!(ticket.thumbprints(), vec![Thumbprint::parse(SHA256).unwrap()]);
    }

    #[test]
    fn rejects_tickets_without_ticket_or_with_a_bad_port() {
        for returnval in [
            "",
            "<returnval><host>esx</host></returnval>",
            "<returnval><ticket></ticket></returnval>",
            "<returnval><ticket>t</ticket><port>65536</port></returnval>",
        ] {
            assert!(matches!(parse(returnval), Err(TicketError::Malformed(_))), "{returnval}");
        }
    }
}
