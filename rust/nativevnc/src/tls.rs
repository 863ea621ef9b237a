//! TLS client policy: how a server is authenticated (CA verification, pinned thumbprints or nothing) and a
//! connect helper that turns rustls's verdicts into messages a user can act on.
//!
//! Every policy goes through one [`ServerCertVerifier`]. With a CA file or pinned thumbprints, the handshake
//! signatures are checked with ring's algorithms, extended to the 1024-bit RSA keys some VMware hosts still
//! present (the `algorithms` module); only the question "is this certificate the right one?" differs.
//! Insecure means insecure: no property of the certificate, nor its handshake signature, stops the
//! connection. When a certificate or signature is refused, the verifier puts its reason into rustls's error
//! and [`connect`] unpacks it again.

mod algorithms;
mod key;
mod listed;
#[cfg(test)]
mod openssl_tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ring::digest;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::error::{Error, ErrorKind};
use crate::transport;
use key::KeyKind;

/// What a user can do about a certificate that is not trusted: the CLI's options and the variables of
/// os-autoinst's VMware backend.
const TRUST_ADVICE: &str = "give a CA file containing its issuer (--ca-file, VMWARE_VNC_OVER_WS_CA_FILE), \
     pin its thumbprint (--thumbprint, VMWARE_VNC_OVER_WS_THUMBPRINT) or allow insecure TLS \
     (--insecure, VMWARE_VNC_OVER_WS_INSECURE=1)";

/// What a user can do about a handshake that cannot be verified, whatever the certificate.
const INSECURE_ADVICE: &str =
    "if this is the server you meant, allow insecure TLS (--insecure, VMWARE_VNC_OVER_WS_INSECURE=1)";

/// The hash a [`Thumbprint`] is taken with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashAlgorithm {
    /// SHA-1, 20 bytes: ESXi's `sslThumbprint`.
    Sha1,
    /// SHA-256, 32 bytes: the `certThumbprintList` entries of vSphere 7.0.3.1 and later.
    Sha256,
}

impl HashAlgorithm {
    fn digest(self) -> &'static digest::Algorithm {
        match self {
            HashAlgorithm::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            HashAlgorithm::Sha256 => &digest::SHA256,
        }
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HashAlgorithm::Sha1 => "SHA-1",
            HashAlgorithm::Sha256 => "SHA-256",
        })
    }
}

/// A certificate fingerprint: SHA-1 (ESXi `sslThumbprint`) or SHA-256 (`certThumbprintList`), taken over the
/// DER encoding of the whole certificate.
#[derive(Clone, PartialEq, Eq)]
pub struct Thumbprint {
    algorithm: HashAlgorithm,
    digest: Vec<u8>,
}

impl Thumbprint {
    /// Parses `AB:CD:…` or plain hex, in any case. The length decides the algorithm: 20 bytes are SHA-1,
    /// 32 bytes SHA-256; anything else is a usage error.
    pub fn parse(s: &str) -> Result<Thumbprint, Error> {
        let s = s.trim();
        let invalid = |why: &str| Error::usage(format!("invalid certificate thumbprint {s:?}: {why}"));
        let pairs: Vec<&str> = if s.contains(':') {
            s.split(':').collect()
        } else if s.len() % 2 == 0 && s.is_ascii() {
            (0..s.len()).step_by(2).map(|i| &s[i..i + 2]).collect()
        } else {
            return Err(invalid("expected pairs of hexadecimal digits"));
        };
        let digest = pairs
            .iter()
            .map(|pair| {
                if pair.len() == 2 && pair.bytes().all(|b| b.is_ascii_hexdigit()) {
                    u8::from_str_radix(pair, 16).ok()
                } else {
                    None
                }
            })
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(|| invalid("expected pairs of hexadecimal digits"))?;
        let algorithm = match digest.len() {
            20 => HashAlgorithm::Sha1,
            32 => HashAlgorithm::Sha256,
            n => return Err(invalid(&format!("{n} bytes, expected 20 (SHA-1) or 32 (SHA-256)"))),
        };
        Ok(Thumbprint { algorithm, digest })
    }

    /// The SHA-1 thumbprint of a DER certificate.
    pub fn sha1(der: &[u8]) -> Thumbprint {
        Self::of(HashAlgorithm::Sha1, der)
    }

    /// The SHA-256 thumbprint of a DER certificate.
    pub fn sha256(der: &[u8]) -> Thumbprint {
        Self::of(HashAlgorithm::Sha256, der)
    }

    fn of(algorithm: HashAlgorithm, der: &[u8]) -> Thumbprint {
        Thumbprint { algorithm, digest: digest::digest(algorithm.digest(), der).as_ref().to_vec() }
    }

    /// The algorithm this thumbprint was taken with.
    pub fn algorithm(&self) -> HashAlgorithm {
        self.algorithm
    }

    /// Whether the DER certificate `der` has this thumbprint.
    pub fn matches(&self, der: &[u8]) -> bool {
        digest::digest(self.algorithm.digest(), der).as_ref() == self.digest.as_slice()
    }
}

/// `SHA-256 AB:CD:…`: the algorithm, then the digest as upper-case hex pairs joined by colons.
impl fmt::Display for Thumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.algorithm)?;
        for (i, byte) in self.digest.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Thumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Thumbprint({self})")
    }
}

/// How a TLS server is authenticated.
#[derive(Clone, Debug)]
pub enum Verification {
    /// The system's roots plus the certificates in an optional PEM CA file, with the usual chain and host name
    /// checks.
    Verify {
        /// A PEM file of additional trusted CA certificates.
        ca_file: Option<PathBuf>,
    },
    /// Accept exactly a leaf certificate with one of these thumbprints, whoever issued it and whatever name it
    /// carries.
    Pinned(Vec<Thumbprint>),
    /// Accept any certificate.
    Insecure,
}

/// Verification against the system's roots, without a CA file.
impl Default for Verification {
    fn default() -> Self {
        Verification::Verify { ca_file: None }
    }
}

/// A rustls client configuration for `verification` that offers the ALPN protocols `alpn`.
///
/// Only the ring provider is used, never a process-wide default. A missing, unreadable or empty CA file and an
/// empty pin list are usage errors; a system without any root certificate is not (every verification then
/// fails with a "not trusted" message).
pub fn client_config(verification: &Verification, alpn: &[&[u8]]) -> Result<Arc<rustls::ClientConfig>, Error> {
    let provider = provider();
    let policy = match verification {
        Verification::Verify { ca_file } => ca_policy(ca_file.as_deref(), &provider)?,
        Verification::Pinned(pins) if pins.is_empty() => {
            return Err(Error::usage("pinned TLS verification needs at least one certificate thumbprint"))
        }
        Verification::Pinned(pins) => Policy::Pinned(pins.clone()),
        Verification::Insecure => Policy::Insecure,
    };
    build_config(policy, provider, alpn)
}

/// rustls's ring provider, with [`algorithms::SUPPORTED`] for certificate chains and handshake signatures.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(CryptoProvider {
        signature_verification_algorithms: algorithms::SUPPORTED,
        ..rustls::crypto::ring::default_provider()
    })
}

fn build_config(
    policy: Policy,
    provider: Arc<CryptoProvider>,
    alpn: &[&[u8]],
) -> Result<Arc<rustls::ClientConfig>, Error> {
    let verifier = PolicyVerifier { policy };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::new(ErrorKind::Internal, format!("TLS configuration: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// TCP connect to `host:port` ([`crate::transport::connect_tcp`]), then a TLS handshake with `host` as the
/// server name (a DNS name or an IP literal, IPv6 with or without brackets). There is no timeout here: the
/// caller wraps the call in `tokio::time::timeout`.
pub async fn connect(host: &str, port: u16, config: Arc<rustls::ClientConfig>) -> Result<TlsStream<TcpStream>, Error> {
    let tcp = transport::connect_tcp(host, port).await?;
    handshake(tcp, host, port, config).await
}

/// The TLS half of [`connect`]; errors read "TLS handshake with HOST:PORT failed: …". A failure of TLS itself
/// (a refused certificate, no common protocol version) is a [`ErrorKind::Setup`] error; the connection
/// breaking during the handshake a [`ErrorKind::Connect`] one.
pub(crate) async fn handshake(
    tcp: TcpStream,
    host: &str,
    port: u16,
    config: Arc<rustls::ClientConfig>,
) -> Result<TlsStream<TcpStream>, Error> {
    let failed = |kind, why: String| {
        Error::new(kind, format!("TLS handshake with {} failed: {why}", transport::host_port(host, port)))
    };
    let name = ServerName::try_from(transport::unbracket(host).to_owned())
        .map_err(|_| failed(ErrorKind::Usage, format!("{host:?} is neither a DNS name nor an IP address")))?;
    TlsConnector::from(config).connect(name, tcp).await.map_err(|e| {
        let kind = if tls_error(&e).is_some() { ErrorKind::Setup } else { ErrorKind::Connect };
        failed(kind, describe_io_error(&e))
    })
}

/// The TLS error inside an I/O error from a handshake, if TLS itself failed.
fn tls_error(e: &std::io::Error) -> Option<&rustls::Error> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

/// The message of a failed handshake: our own [`Rejection`] if the verifier refused the certificate, else
/// what rustls or the socket said.
fn describe_io_error(e: &std::io::Error) -> String {
    let rejection = tls_error(e).and_then(|tls| match tls {
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(other))) => {
            other.downcast_ref::<Rejection>()
        }
        _ => None,
    });
    match rejection {
        Some(rejection) => rejection.to_string(),
        None => e.to_string(),
    }
}

/// The system's trusted roots, read once per process: reading and parsing them takes milliseconds, and a
/// console that logs in again would pay that on every connection. They are read without holding the cell
/// (two first connections may both read them), so that a `fork()` meanwhile cannot leave the child a cell
/// that stays locked.
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: std::sync::OnceLock<Vec<CertificateDer<'static>>> = std::sync::OnceLock::new();
    if let Some(roots) = ROOTS.get() {
        return roots;
    }
    let roots = rustls_native_certs::load_native_certs().certs;
    ROOTS.get_or_init(|| roots)
}

/// [`Policy::Verify`] with the system's roots and those of `ca_file`.
fn ca_policy(ca_file: Option<&Path>, provider: &Arc<CryptoProvider>) -> Result<Policy, Error> {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(system_roots().iter().cloned());
    let listed = match ca_file {
        Some(path) => read_ca_file(path)?,
        None => Vec::new(),
    };
    for cert in &listed {
        roots.add(cert.clone()).map_err(|e| {
            let path = ca_file.map(Path::display).map(|p| p.to_string()).unwrap_or_default();
            Error::usage(format!("CA file {path}: a certificate cannot be used as a trust anchor: {e}"))
        })?;
    }
    if roots.is_empty() {
        return Ok(Policy::Verify { webpki: None, listed });
    }
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| Error::new(ErrorKind::Internal, format!("TLS certificate verifier: {e}")))?;
    Ok(Policy::Verify { webpki: Some(webpki), listed })
}

fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let pem = std::fs::read(path).map_err(|e| Error::usage(format!("cannot read CA file {}: {e}", path.display())))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::usage(format!("CA file {} is not valid PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(Error::usage(format!("CA file {} contains no PEM certificate", path.display())));
    }
    Ok(certs)
}

/// The decision part of a [`Verification`], ready to run.
#[derive(Debug)]
enum Policy {
    /// Chain verification: `webpki` is `None` when there is no trust anchor at all; `listed` are the CA file's
    /// certificates, trusted as server certificates too (see [`listed`]).
    Verify {
        webpki: Option<Arc<WebPkiServerVerifier>>,
        listed: Vec<CertificateDer<'static>>,
    },
    Pinned(Vec<Thumbprint>),
    Insecure,
}

#[derive(Debug)]
struct PolicyVerifier {
    policy: Policy,
}

impl PolicyVerifier {
    /// A handshake signature check: none when insecure, else [`algorithms::SUPPORTED`]'s, with a refusal
    /// explained by [`unverifiable`].
    fn verify_signature(
        &self,
        verify: impl FnOnce(&WebPkiSupportedAlgorithms) -> Result<HandshakeSignatureValid, rustls::Error>,
        cert: &CertificateDer<'_>,
        scheme: SignatureScheme,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        match self.policy {
            Policy::Insecure => Ok(HandshakeSignatureValid::assertion()),
            _ => verify(&algorithms::SUPPORTED).map_err(|e| unverifiable(&e, cert, scheme).into()),
        }
    }
}

/// Schemes offered only when nothing is verified, so that servers which can sign with nothing else still
/// complete the handshake.
const INSECURE_ONLY_SCHEMES: &[SignatureScheme] = &[
    SignatureScheme::ECDSA_NISTP521_SHA512,
    SignatureScheme::ED448,
    SignatureScheme::RSA_PKCS1_SHA1,
    SignatureScheme::ECDSA_SHA1_Legacy,
];

/// Why a handshake signature made with `cert`'s key was refused, in words.
fn unverifiable(error: &rustls::Error, cert: &CertificateDer<'_>, scheme: SignatureScheme) -> Rejection {
    let what = match KeyKind::of(cert) {
        Some(KeyKind::Rsa(bits)) if bits < algorithms::MIN_RSA_BITS => format!(
            "the server's certificate has a {bits}-bit RSA key, which this client refuses for TLS handshake \
             signatures (it needs at least {} bits: smaller keys can be broken)",
            algorithms::MIN_RSA_BITS
        ),
        Some(key) => format!(
            "the server's {scheme:?} handshake signature does not verify with its certificate's key, {key} \
             ({error})"
        ),
        None => format!("the server's certificate cannot be parsed to verify its handshake signature ({error})"),
    };
    Rejection::Unverifiable { what, presented: Presented::of(cert) }
}

/// Whether webpki refused a certificate for being a CA's (see [`listed`]).
fn is_ca_used_as_end_entity(why: &CertificateError) -> bool {
    match why {
        CertificateError::Other(OtherError(other)) => {
            matches!(other.downcast_ref::<webpki::Error>(), Some(webpki::Error::CaUsedAsEndEntity))
        }
        _ => false,
    }
}

/// The reason webpki gave for a certificate it does not trust, with its key when that may be the cause.
fn untrusted_reason(why: &CertificateError, cert: &CertificateDer<'_>) -> String {
    match (why, KeyKind::of(cert)) {
        (CertificateError::UnknownIssuer, _) => "it is not issued by a trusted certificate authority".into(),
        (CertificateError::BadSignature, Some(KeyKind::Rsa(bits))) if bits < algorithms::MIN_RSA_BITS => format!(
            "its signature cannot be verified: it has a {bits}-bit RSA key, and this client refuses RSA keys of \
             less than {} bits",
            algorithms::MIN_RSA_BITS
        ),
        (CertificateError::Other(OtherError(other)), _) => other.to_string(),
        (why, _) => why.to_string(),
    }
}

impl ServerCertVerifier for PolicyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.policy {
            Policy::Insecure => Ok(ServerCertVerified::assertion()),
            Policy::Pinned(pins) if pins.iter().any(|pin| pin.matches(end_entity)) => {
                Ok(ServerCertVerified::assertion())
            }
            Policy::Pinned(pins) => {
                Err(Rejection::PinMismatch { expected: pins.clone(), presented: Presented::of(end_entity) }.into())
            }
            Policy::Verify { webpki: None, .. } => Err(Rejection::NotTrusted {
                reason: "there are no trusted CA certificates (the system has none and no CA file was given)".into(),
                presented: Presented::of(end_entity),
            }
            .into()),
            Policy::Verify { webpki: Some(webpki), listed } => webpki
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
                .or_else(|e| match e {
                    rustls::Error::InvalidCertificate(why) => {
                        let reason = if is_ca_used_as_end_entity(&why) {
                            match listed::verify(end_entity, listed, server_name, now) {
                                Ok(()) => return Ok(ServerCertVerified::assertion()),
                                Err(reason) => reason,
                            }
                        } else {
                            untrusted_reason(&why, end_entity)
                        };
                        Err(Rejection::NotTrusted { reason, presented: Presented::of(end_entity) }.into())
                    }
                    other => Err(other),
                }),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify_signature(|algs| rustls::crypto::verify_tls12_signature(message, cert, dss, algs), cert, dss.scheme)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify_signature(|algs| rustls::crypto::verify_tls13_signature(message, cert, dss, algs), cert, dss.scheme)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        let mut schemes = algorithms::SUPPORTED.supported_schemes();
        if matches!(self.policy, Policy::Insecure) {
            schemes.extend_from_slice(INSECURE_ONLY_SCHEMES);
        }
        schemes
    }
}

/// The thumbprints of the certificate a server presented.
#[derive(Debug)]
struct Presented {
    sha256: Thumbprint,
    sha1: Thumbprint,
}

impl Presented {
    fn of(der: &[u8]) -> Self {
        Presented { sha256: Thumbprint::sha256(der), sha1: Thumbprint::sha1(der) }
    }
}

impl fmt::Display for Presented {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} and {}", self.sha256, self.sha1)
    }
}

/// Why the verifier refused a certificate; travels inside `rustls::Error` to [`describe_io_error`].
#[derive(Debug)]
enum Rejection {
    PinMismatch {
        expected: Vec<Thumbprint>,
        presented: Presented,
    },
    NotTrusted {
        reason: String,
        presented: Presented,
    },
    /// The certificate is accepted, but the server's handshake signature made with its key is not.
    Unverifiable {
        what: String,
        presented: Presented,
    },
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::PinMismatch { expected, presented } => {
                let expected = expected.iter().map(Thumbprint::to_string).collect::<Vec<_>>().join(" or ");
                write!(
                    f,
                    "the server certificate does not match the pinned thumbprint (expected {expected}); \
                     the server presented a certificate with {presented}"
                )
            }
            Rejection::NotTrusted { reason, presented } => {
                write!(
                    f,
                    "the server certificate is not trusted: {reason} (it has {presented}); to trust it, {TRUST_ADVICE}"
                )
            }
            Rejection::Unverifiable { what, presented } => {
                write!(
                    f,
                    "the TLS handshake cannot be verified: {what} (the certificate has {presented}); {INSECURE_ADVICE}"
                )
            }
        }
    }
}

impl std::error::Error for Rejection {}

impl From<Rejection> for rustls::Error {
    fn from(rejection: Rejection) -> Self {
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(rejection))))
    }
}

/// A self-signed certificate for `localhost` and `127.0.0.1`, and TLS servers using it, for tests here and in
/// the modules that build on this one.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::Arc;

    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

    /// A certificate, its key and the certificate as PEM.
    pub(crate) struct TestCert {
        pub(crate) der: CertificateDer<'static>,
        pub(crate) key: PrivatePkcs8KeyDer<'static>,
        pub(crate) pem: String,
    }

    pub(crate) fn self_signed() -> TestCert {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("generate a test certificate");
        TestCert {
            der: certified.cert.der().clone(),
            key: PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()),
            pem: certified.cert.pem(),
        }
    }

    pub(crate) fn server_config(cert: &TestCert, alpn: &[&[u8]]) -> Arc<rustls::ServerConfig> {
        let mut config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("protocol versions")
                .with_no_client_auth()
                .with_single_cert(vec![cert.der.clone()], PrivateKeyDer::Pkcs8(cert.key.clone_key()))
                .expect("server certificate");
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio_rustls::TlsAcceptor;

    /// SEQUENCE { INTEGER 5 }; digests from `openssl dgst -sha1 -c` and `openssl dgst -sha256 -c`.
    const BLOB: &[u8] = &[0x30, 0x03, 0x02, 0x01, 0x05];
    const BLOB_SHA1: &str = "16:c3:c3:e0:bb:5b:5f:4f:ba:ec:db:6d:f3:7a:5a:4f:9d:11:96:e4";
    const BLOB_SHA256: &str = "417c7763c4e320a6b747b3cb0c6d22f93741b29a32b48594b8eb4c144fe6d729";

    #[test]
    fn parses_sha1_with_colons() {
        let t = Thumbprint::parse("16:C3:C3:E0:BB:5B:5F:4F:BA:EC:DB:6D:F3:7A:5A:4F:9D:11:96:E4").unwrap();
        assert_eq!(t.algorithm(), HashAlgorithm::Sha1);
        assert_eq!(t, Thumbprint::parse(BLOB_SHA1).unwrap());
        assert_eq!(t.to_string(), "SHA-1 16:C3:C3:E0:BB:5B:5F:4F:BA:EC:DB:6D:F3:7A:5A:4F:9D:11:96:E4");
    }

    #[test]
    fn parses_sha256_plain_lower_case() {
        let t = Thumbprint::parse(BLOB_SHA256).unwrap();
        assert_eq!(t.algorithm(), HashAlgorithm::Sha256);
        assert_eq!(
            t.to_string(),
            "SHA-256 41:7C:77:63:C4:E3:20:A6:B7:47:B3:CB:0C:6D:22:F9:37:41:B2:9A:32:B4:85:94:B8:EB:4C:14:4F:E6:D7:29"
        );
    }

    #[test]
    fn rejects_wrong_length_and_bad_hex() {
        for (input, why) in [
            ("AB:CD", "2 bytes"),
            ("abcd", "2 bytes"),
            ("", "0 bytes"),
            ("16:c3:c3:e0:bb:5b:5f:4f:ba:ec:db:6d:f3:7a:5a:4f:9d:11:96:e", "hexadecimal"),
            ("16c3c3e0bb5b5f4fbaecdb6df37a5a4f9d1196e", "hexadecimal"),
            ("zz:c3:c3:e0:bb:5b:5f:4f:ba:ec:db:6d:f3:7a:5a:4f:9d:11:96:e4", "hexadecimal"),
            ("+1:c3:c3:e0:bb:5b:5f:4f:ba:ec:db:6d:f3:7a:5a:4f:9d:11:96:e4", "hexadecimal"),
            ("16::c3", "hexadecimal"),
        ] {
            let e = Thumbprint::parse(input).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Usage, "{input}");
            assert!(e.message().contains(why), "{input}: {e}");
        }
    }

    #[test]
    fn digests_match_openssl() {
        assert_eq!(Thumbprint::sha1(BLOB), Thumbprint::parse(BLOB_SHA1).unwrap());
        assert_eq!(Thumbprint::sha256(BLOB), Thumbprint::parse(BLOB_SHA256).unwrap());
        assert!(Thumbprint::parse(BLOB_SHA1).unwrap().matches(BLOB));
        assert!(Thumbprint::parse(BLOB_SHA256).unwrap().matches(BLOB));
        assert!(!Thumbprint::parse(BLOB_SHA256).unwrap().matches(&BLOB[1..]));
    }

    #[test]
    fn ca_file_problems_are_usage_errors() {
        let dir = std::env::temp_dir().join(format!("nativevnc-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "no certificates here\n").unwrap();
        let missing = dir.join("missing.pem");
        for path in [empty, missing] {
            let e = client_config(&Verification::Verify { ca_file: Some(path.clone()) }, &[]).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Usage);
            assert!(e.message().contains(&path.display().to_string()), "{e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
        let e = client_config(&Verification::Pinned(vec![]), &[]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Usage);
    }

    /// A TLS server on loopback that answers every connection with "ok" and then closes it.
    async fn serve(cert: &testing::TestCert) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = TlsAcceptor::from(testing::server_config(cert, &[]));
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        let _ = tls.write_all(b"ok").await;
                        let _ = tls.shutdown().await;
                    }
                });
            }
        });
        port
    }

    async fn try_connect(host: &str, port: u16, verification: Verification) -> Result<(), Error> {
        let config = client_config(&verification, &[])?;
        let mut tls = connect(host, port, config).await?;
        let mut reply = Vec::new();
        tls.read_to_end(&mut reply).await.map_err(|e| Error::connect(e.to_string()))?;
        assert_eq!(reply, b"ok");
        Ok(())
    }

    #[tokio::test]
    async fn handshakes_according_to_policy() {
        let cert = testing::self_signed();
        let port = serve(&cert).await;
        let sha1 = Thumbprint::sha1(&cert.der);
        let sha256 = Thumbprint::sha256(&cert.der);

        try_connect("127.0.0.1", port, Verification::Pinned(vec![sha1.clone()])).await.unwrap();
        try_connect("127.0.0.1", port, Verification::Pinned(vec![sha256.clone()])).await.unwrap();
        try_connect("127.0.0.1", port, Verification::Insecure).await.unwrap();

        let wrong = Thumbprint::parse(BLOB_SHA256).unwrap();
        let e = try_connect("127.0.0.1", port, Verification::Pinned(vec![wrong.clone()])).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Setup);
        assert!(e.message().starts_with(&format!("TLS handshake with 127.0.0.1:{port} failed: ")), "{e}");
        assert!(e.message().contains("does not match the pinned thumbprint"), "{e}");
        assert!(e.message().contains(&format!("expected {wrong}")), "{e}");
        assert!(e.message().contains(&format!("presented a certificate with {sha256} and {sha1}")), "{e}");

        let e = try_connect("localhost", port, Verification::Verify { ca_file: None }).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Setup);
        assert!(e.message().contains("the server certificate is not trusted"), "{e}");
        assert!(e.message().contains(&sha256.to_string()), "{e}");
        assert!(e.message().contains("CA file") && e.message().contains("insecure"), "{e}");

        let dir = std::env::temp_dir().join(format!("nativevnc-tls-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, &cert.pem).unwrap();
        let verify = Verification::Verify { ca_file: Some(ca_file) };
        try_connect("localhost", port, verify.clone()).await.unwrap();
        try_connect("127.0.0.1", port, verify.clone()).await.unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn no_trust_anchors_at_all_is_not_trusted() {
        let cert = testing::self_signed();
        let port = serve(&cert).await;
        let provider = provider();
        let config = build_config(Policy::Verify { webpki: None, listed: Vec::new() }, provider, &[]).unwrap();
        let e = connect("localhost", port, config).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Setup);
        assert!(e.message().contains("not trusted: there are no trusted CA certificates"), "{e}");
    }

    #[tokio::test]
    async fn connect_failure_names_the_address() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let config = client_config(&Verification::Insecure, &[]).unwrap();
        let e = connect("127.0.0.1", port, config).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Connect);
        assert!(e.message().starts_with(&format!("connecting to 127.0.0.1:{port}: ")), "{e}");
    }
}
