//! The simulator's TLS identity: a fresh self-signed certificate per run, and its thumbprints in the form
//! vSphere puts in tickets (uppercase hex pairs joined by ':' over the DER certificate).

use ring::digest;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// SHA-1 and SHA-256 thumbprints of a DER certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumbprints {
    pub sha1: String,
    pub sha256: String,
}

impl Thumbprints {
    pub fn of(der: &[u8]) -> Self {
        Thumbprints {
            sha1: colon_hex(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, der).as_ref()),
            sha256: colon_hex(digest::digest(&digest::SHA256, der).as_ref()),
        }
    }
}

/// `AB:CD:…`, as govmomi's `ThumbprintSHA1` and ESXi write them.
pub fn colon_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

/// A certificate with its private key.
pub struct Identity {
    pub cert: CertificateDer<'static>,
    pub key: PrivatePkcs8KeyDer<'static>,
    pub pem: String,
    pub thumbprints: Thumbprints,
}

impl Identity {
    /// A self-signed certificate for `localhost`, `127.0.0.1` and `hostname` (if given).
    pub fn generate(hostname: Option<&str>) -> Result<Identity, rcgen::Error> {
        let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        if let Some(h) = hostname.filter(|h| !h.is_empty() && !names.iter().any(|n| n == h)) {
            names.push(h.to_string());
        }
        let mut params = rcgen::CertificateParams::new(names)?;
        params.distinguished_name.push(rcgen::DnType::CommonName, "webmks-sim");
        let key = rcgen::KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(Identity {
            thumbprints: Thumbprints::of(cert.der()),
            pem: cert.pem(),
            cert: cert.der().clone(),
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        })
    }

    /// A rustls server configuration presenting this certificate (HTTP/1.1 only).
    pub fn server_config(&self) -> Result<rustls::ServerConfig, rustls::Error> {
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![self.cert.clone()], PrivateKeyDer::Pkcs8(self.key.clone_key()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprints_are_uppercase_colon_pairs() {
        let t = Thumbprints::of(b"abc");
        assert_eq!(t.sha1, "A9:99:3E:36:47:06:81:6A:BA:3E:25:71:78:50:C2:6C:9C:D0:D8:9D");
        assert_eq!(t.sha256.len(), 32 * 3 - 1);
        assert!(t.sha256.starts_with("BA:78:16:BF:"));
    }

    #[test]
    fn generated_identities_differ_and_serve() {
        let a = Identity::generate(Some("esx.example")).unwrap();
        let b = Identity::generate(None).unwrap();
        assert_ne!(a.thumbprints, b.thumbprints);
        assert_eq!(a.thumbprints, Thumbprints::of(&a.cert));
        assert!(a.pem.starts_with("-----BEGIN CERTIFICATE-----"));
        a.server_config().unwrap();
    }
}
