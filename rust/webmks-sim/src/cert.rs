//! The simulator's TLS identity: a fresh self-signed certificate per run, or one given as PEM files (RSA of
//! 1024 to 4096 bits, ECDSA P-256 or P-384, signed in any way), and its thumbprints in the form vSphere puts in
//! tickets (uppercase hex pairs joined by ':' over the DER certificate).

mod rsa_signer;

use std::path::Path;
use std::sync::Arc;

use ring::digest;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::{CertifiedKey, SigningKey, SingleCertAndKey};

use rsa_signer::RsaSigningKey;

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
    pub key: Arc<dyn SigningKey>,
    pub pem: String,
    pub thumbprints: Thumbprints,
}

impl Identity {
    /// A self-signed certificate for `localhost`, `127.0.0.1` and `hostname` (if given).
    pub fn generate(hostname: Option<&str>) -> Result<Identity, String> {
        let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        if let Some(h) = hostname.filter(|h| !h.is_empty() && !names.iter().any(|n| n == h)) {
            names.push(h.to_string());
        }
        let mut params = rcgen::CertificateParams::new(names).map_err(|e| e.to_string())?;
        params.distinguished_name.push(rcgen::DnType::CommonName, "webmks-sim");
        let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
        let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let signing_key = rustls::crypto::ring::sign::any_supported_type(&der).map_err(|e| e.to_string())?;
        Ok(Identity {
            thumbprints: Thumbprints::of(cert.der()),
            pem: cert.pem(),
            cert: cert.der().clone(),
            key: signing_key,
        })
    }

    /// The first certificate of the PEM file `cert` (whose whole text becomes `pem`) and the private key of the
    /// PEM file `key` (PKCS#8, PKCS#1 or SEC1). ring signs with the keys it supports, RustCrypto's `rsa` with
    /// smaller RSA keys.
    pub fn load(cert: &Path, key: &Path) -> Result<Identity, String> {
        let pem = std::fs::read_to_string(cert).map_err(|e| format!("{}: {e}", cert.display()))?;
        let der = CertificateDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| format!("{}: no PEM certificate: {e}", cert.display()))?;
        let key_der =
            PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: no PEM private key: {e}", key.display()))?;
        let signing_key: Arc<dyn SigningKey> = match rustls::crypto::ring::sign::any_supported_type(&key_der) {
            Ok(signing_key) => signing_key,
            Err(ring_refused) => match RsaSigningKey::from_der(&key_der) {
                Some(rsa) => Arc::new(rsa),
                None => return Err(format!("{}: unsupported private key: {ring_refused}", key.display())),
            },
        };
        Ok(Identity { thumbprints: Thumbprints::of(&der), pem, cert: der, key: signing_key })
    }

    /// A rustls server configuration presenting this certificate (HTTP/1.1 only).
    pub fn server_config(&self) -> Result<rustls::ServerConfig, rustls::Error> {
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(SingleCertAndKey::from(CertifiedKey::new(
                vec![self.cert.clone()],
                self.key.clone(),
            ))));
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

    /// Loads a certificate and key made by `openssl req` and completes a handshake with the project's client,
    /// pinned to the certificate.
    async fn serve_openssl_identity(newkey: &[&str]) {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let status = std::process::Command::new("openssl")
            .args(["req", "-x509", "-nodes", "-days", "2", "-subj", "/CN=localhost"])
            .args(newkey)
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("run openssl");
        assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
        let identity = Identity::load(&cert, &key).unwrap();
        assert!(identity.pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(identity.server_config().unwrap()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let _ = acceptor.accept(tcp).await;
            }
        });
        let pin = nativevnc::tls::Thumbprint::parse(&identity.thumbprints.sha256).unwrap();
        let config = nativevnc::tls::client_config(&nativevnc::tls::Verification::Pinned(vec![pin]), &[]).unwrap();
        nativevnc::tls::connect("127.0.0.1", port, config).await.unwrap_or_else(|e| panic!("{newkey:?}: {e}"));
    }

    #[tokio::test]
    async fn loads_and_serves_rsa_1024_and_ecdsa_p384() {
        serve_openssl_identity(&["-newkey", "rsa:1024"]).await;
        serve_openssl_identity(&["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"]).await;
    }
}
