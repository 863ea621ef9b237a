//! What kind of key a certificate carries, in words, for messages about handshakes that cannot be verified.

use std::fmt;

use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;

/// A certificate's public key, as far as a user needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum KeyKind {
    /// An RSA key and the size of its modulus in bits.
    Rsa(usize),
    /// An elliptic curve key on the named curve (or the curve's OID when it has no common name).
    Ec(String),
    /// Any other algorithm, by name or OID.
    Other(String),
}

impl KeyKind {
    /// The key of a DER certificate, or `None` if it cannot be parsed.
    pub(super) fn of(der: &[u8]) -> Option<KeyKind> {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        let spki = cert.public_key();
        Some(match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) => KeyKind::Rsa(rsa.key_size()),
            Ok(PublicKey::EC(_)) => {
                let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok());
                KeyKind::Ec(curve.map_or_else(|| "an unnamed curve".to_owned(), |oid| curve_name(&oid.to_id_string())))
            }
            _ => KeyKind::Other(algorithm_name(&spki.algorithm.algorithm.to_id_string())),
        })
    }
}

/// "a 1024-bit RSA key", "an ECDSA P-256 key", "a key of algorithm 1.2.840.10040.4.1".
impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyKind::Rsa(bits) => write!(f, "a {bits}-bit RSA key"),
            KeyKind::Ec(curve) => write!(f, "an ECDSA {curve} key"),
            KeyKind::Other(algorithm) => write!(f, "a key of algorithm {algorithm}"),
        }
    }
}

fn curve_name(oid: &str) -> String {
    match oid {
        "1.2.840.10045.3.1.7" => "P-256".to_owned(),
        "1.3.132.0.34" => "P-384".to_owned(),
        "1.3.132.0.35" => "P-521".to_owned(),
        other => format!("curve {other}"),
    }
}

fn algorithm_name(oid: &str) -> String {
    match oid {
        "1.2.840.113549.1.1.10" => "RSASSA-PSS".to_owned(),
        "1.2.840.10040.4.1" => "DSA".to_owned(),
        "1.3.101.112" => "Ed25519".to_owned(),
        "1.3.101.113" => "Ed448".to_owned(),
        other => other.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_rsa_sizes_and_curves() {
        let ecdsa = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        assert_eq!(KeyKind::of(ecdsa.cert.der()), Some(KeyKind::Ec("P-256".to_owned())));
        assert_eq!(KeyKind::of(ecdsa.cert.der()).unwrap().to_string(), "an ECDSA P-256 key");
        assert_eq!(KeyKind::Rsa(1024).to_string(), "a 1024-bit RSA key");
        assert_eq!(KeyKind::of(b"not a certificate"), None);
    }
}
