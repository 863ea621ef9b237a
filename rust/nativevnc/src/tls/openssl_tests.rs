//! The client against OpenSSL's `s_server`: certificates made by the `openssl` command (RSA 1024, 2048 and
//! 4096, ECDSA P-256 and P-384, RSA-PSS signatures, and a 768-bit RSA key no mode but insecure accepts),
//! servers limited to TLS 1.2 or TLS 1.3, in the insecure, CA file and pinned modes. The matrix's server
//! certificates are issued by a CA with the same kind of key and signature, so that the CA file mode verifies
//! the certificate's signature as well as the handshake's.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// Certificates made by `openssl` with this key and these signature options.
struct OpensslCert {
    name: &'static str,
    key: &'static [&'static str],
    signature: &'static [&'static str],
}

const PSS: &[&str] = &["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"];

const CERTS: &[OpensslCert] = &[
    OpensslCert { name: "rsa1024", key: &["-newkey", "rsa:1024"], signature: &[] },
    OpensslCert { name: "rsa2048", key: &["-newkey", "rsa:2048"], signature: &[] },
    OpensslCert { name: "rsa4096", key: &["-newkey", "rsa:4096"], signature: &[] },
    OpensslCert { name: "p256", key: &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"], signature: &[] },
    OpensslCert { name: "p384", key: &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"], signature: &[] },
    OpensslCert { name: "rsa1024-pss", key: &["-newkey", "rsa:1024"], signature: PSS },
    OpensslCert { name: "rsa2048-pss", key: &["-newkey", "rsa:2048"], signature: PSS },
];

/// Runs `openssl` with `args`; panics with its output if it fails.
fn openssl(args: &[&str]) {
    let output = Command::new("openssl").args(args).output().expect("run openssl");
    assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
}

/// Makes a self-signed `dir/NAME.crt` and its `dir/NAME.key`; returns the certificate's path.
fn make_cert(dir: &Path, name: &str, req_args: &[&str]) -> PathBuf {
    let (crt, key) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    let mut args = vec!["req", "-x509", "-nodes", "-sha256", "-days", "30", "-subj", "/CN=localhost"];
    args.extend_from_slice(&["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]);
    args.extend_from_slice(req_args);
    args.extend_from_slice(&["-keyout", key.to_str().unwrap(), "-out", crt.to_str().unwrap()]);
    openssl(&args);
    crt
}

/// Makes a CA (`dir/NAME-ca.crt`) and a server certificate it issued (`dir/NAME.crt`, `dir/NAME.key`, not a
/// CA), both with `cert`'s key type and signature; returns the paths of the server certificate and of the CA's.
fn make_issued(dir: &Path, cert: &OpensslCert) -> (PathBuf, PathBuf) {
    let path = |suffix: &str| dir.join(format!("{}{suffix}", cert.name)).to_str().unwrap().to_owned();
    let (ca_crt, ca_key, csr, ext) = (path("-ca.crt"), path("-ca.key"), path(".csr"), path(".ext"));
    let (crt, key) = (path(".crt"), path(".key"));
    let mut args = vec!["req", "-x509", "-nodes", "-sha256", "-days", "30", "-subj", "/CN=NativeVNC test CA"];
    args.extend_from_slice(cert.key);
    args.extend_from_slice(cert.signature);
    args.extend_from_slice(&["-keyout", &ca_key, "-out", &ca_crt]);
    openssl(&args);
    let mut args = vec!["req", "-new", "-nodes", "-subj", "/CN=localhost"];
    args.extend_from_slice(cert.key);
    args.extend_from_slice(&["-keyout", &key, "-out", &csr]);
    openssl(&args);
    std::fs::write(&ext, "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n").unwrap();
    let mut args = vec!["x509", "-req", "-in", &csr, "-CA", &ca_crt, "-CAkey", &ca_key, "-CAcreateserial"];
    args.extend_from_slice(&["-days", "30", "-sha256", "-extfile", &ext, "-out", &crt]);
    args.extend_from_slice(cert.signature);
    openssl(&args);
    (PathBuf::from(crt), PathBuf::from(ca_crt))
}

/// `openssl s_server -www` on a free loopback port, for `accepts` connections; killed when dropped.
struct SServer {
    child: Child,
    port: u16,
}

impl SServer {
    fn start(crt: &Path, version: &str, accepts: usize) -> SServer {
        let key = crt.with_extension("key");
        let mut child = Command::new("openssl")
            .args(["s_server", "-accept", "127.0.0.1:0", "-www", version, "-naccept", &accepts.to_string()])
            .args(["-cert", crt.to_str().unwrap(), "-key", key.to_str().unwrap()])
            // OpenSSL's default security level refuses keys under 2048 bits on the server too.
            .args(["-cipher", "DEFAULT:@SECLEVEL=0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start openssl s_server");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let port = stdout
            .lines()
            .map_while(Result::ok)
            .find_map(|line| line.strip_prefix("ACCEPT 127.0.0.1:").map(|p| p.trim().parse::<u16>().unwrap()))
            .expect("s_server's ACCEPT line");
        SServer { child, port }
    }
}

impl Drop for SServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A handshake with `verification`, then an HTTP request that s_server answers with its status page.
async fn fetch(host: &str, port: u16, verification: &Verification) -> Result<(), Error> {
    let config = client_config(verification, &[])?;
    let mut tls = tokio::time::timeout(std::time::Duration::from_secs(20), connect(host, port, config))
        .await
        .expect("handshake in time")?;
    tls.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
    let mut reply = Vec::new();
    let _ = tls.read_to_end(&mut reply).await;
    assert!(reply.starts_with(b"HTTP/1.0 200 ok"), "{}", String::from_utf8_lossy(&reply));
    Ok(())
}

#[tokio::test]
async fn every_key_type_version_and_mode_against_openssl() {
    let dir = tempdir("matrix");
    for cert in CERTS {
        let (crt, ca) = make_issued(&dir, cert);
        let der = CertificateDer::from_pem_file(&crt).unwrap();
        let modes = [
            ("insecure", Verification::Insecure),
            ("CA file", Verification::Verify { ca_file: Some(ca) }),
            ("pinned", Verification::Pinned(vec![Thumbprint::sha256(&der)])),
        ];
        for version in ["-tls1_2", "-tls1_3"] {
            let server = SServer::start(&crt, version, modes.len());
            for (mode, verification) in &modes {
                fetch("localhost", server.port, verification)
                    .await
                    .unwrap_or_else(|e| panic!("{} {version} {mode}: {e}", cert.name));
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_key_too_small_to_verify_is_explained_and_insecure_still_connects() {
    let dir = tempdir("small");
    let crt = make_cert(&dir, "rsa768", &["-newkey", "rsa:768"]);
    let der = CertificateDer::from_pem_file(&crt).unwrap();
    for version in ["-tls1_2", "-tls1_3"] {
        let server = SServer::start(&crt, version, 3);
        fetch("127.0.0.1", server.port, &Verification::Insecure).await.unwrap();

        let e = fetch("127.0.0.1", server.port, &Verification::Pinned(vec![Thumbprint::sha1(&der)])).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Setup, "{e}");
        assert!(e.message().contains("the TLS handshake cannot be verified"), "{version}: {e}");
        assert!(e.message().contains("has a 768-bit RSA key, which this client refuses"), "{version}: {e}");
        assert!(e.message().contains("--insecure, VMWARE_VNC_OVER_WS_INSECURE=1"), "{version}: {e}");

        let e =
            fetch("localhost", server.port, &Verification::Verify { ca_file: Some(crt.clone()) }).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Setup, "{e}");
        assert!(e.message().contains("has a 768-bit RSA key, which this client refuses"), "{version}: {e}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn an_untrusted_certificate_names_every_way_to_trust_it() {
    let dir = tempdir("untrusted");
    let crt = make_cert(&dir, "p256", &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    let other = make_cert(&dir, "other", &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    let server = SServer::start(&crt, "-tls1_3", 1);
    let e = fetch("localhost", server.port, &Verification::Verify { ca_file: Some(other) }).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Setup, "{e}");
    assert!(e.message().contains("the server certificate is not trusted: it is a CA certificate"), "{e}");
    for option in ["--ca-file", "VMWARE_VNC_OVER_WS_CA_FILE", "--thumbprint", "VMWARE_VNC_OVER_WS_THUMBPRINT"] {
        assert!(e.message().contains(option), "{e}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A fresh directory under the system's temporary one.
fn tempdir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nativevnc-openssl-{what}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
