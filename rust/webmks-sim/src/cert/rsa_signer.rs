//! Signing the TLS handshake with RSA keys ring refuses (under 2048 bits), with RustCrypto's `rsa` crate, so that
//! the simulator can present the 1024-bit keys some VMware hosts (and vcsim) still have.

use std::sync::Arc;

use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::digest::Digest;
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, Pss, RsaPrivateKey};
use rustls::pki_types::PrivateKeyDer;
use rustls::sign::{Signer, SigningKey};
use rustls::{SignatureAlgorithm, SignatureScheme};
use sha2::{Sha256, Sha384, Sha512};

/// The schemes used, best first: PSS (the only RSA ones TLS 1.3 allows), then PKCS#1 v1.5 for TLS 1.2; each
/// with the length of its hash in bytes.
const SCHEMES: &[(SignatureScheme, usize)] = &[
    (SignatureScheme::RSA_PSS_SHA256, 32),
    (SignatureScheme::RSA_PSS_SHA384, 48),
    (SignatureScheme::RSA_PSS_SHA512, 64),
    (SignatureScheme::RSA_PKCS1_SHA256, 32),
    (SignatureScheme::RSA_PKCS1_SHA384, 48),
    (SignatureScheme::RSA_PKCS1_SHA512, 64),
];

/// An RSA private key of any size `rsa` accepts.
#[derive(Debug)]
pub struct RsaSigningKey(Arc<RsaPrivateKey>);

impl RsaSigningKey {
    /// The key in a PKCS#8 or PKCS#1 DER; `None` if it is not an RSA key.
    pub fn from_der(key: &PrivateKeyDer<'_>) -> Option<RsaSigningKey> {
        let parsed = match key {
            PrivateKeyDer::Pkcs8(der) => RsaPrivateKey::from_pkcs8_der(der.secret_pkcs8_der()).ok(),
            PrivateKeyDer::Pkcs1(der) => RsaPrivateKey::from_pkcs1_der(der.secret_pkcs1_der()).ok(),
            _ => None,
        };
        parsed.map(|key| RsaSigningKey(Arc::new(key)))
    }
}

impl SigningKey for RsaSigningKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        // PSS with a salt as long as the hash needs twice the hash and two bytes: SHA-512 does not fit 1024 bits.
        let fits = |hash_len: usize| self.0.size() >= 2 * hash_len + 2;
        let (scheme, _) =
            SCHEMES.iter().copied().find(|&(scheme, hash_len)| offered.contains(&scheme) && fits(hash_len))?;
        Some(Box::new(RsaSigner { key: self.0.clone(), scheme }))
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::RSA
    }
}

#[derive(Debug)]
struct RsaSigner {
    key: Arc<RsaPrivateKey>,
    scheme: SignatureScheme,
}

impl Signer for RsaSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        let mut rng = rsa::rand_core::OsRng;
        let signed = match self.scheme {
            SignatureScheme::RSA_PSS_SHA512 => {
                self.key.sign_with_rng(&mut rng, Pss::new::<Sha512>(), &Sha512::digest(message))
            }
            SignatureScheme::RSA_PSS_SHA384 => {
                self.key.sign_with_rng(&mut rng, Pss::new::<Sha384>(), &Sha384::digest(message))
            }
            SignatureScheme::RSA_PSS_SHA256 => {
                self.key.sign_with_rng(&mut rng, Pss::new::<Sha256>(), &Sha256::digest(message))
            }
            SignatureScheme::RSA_PKCS1_SHA512 => self.key.sign(Pkcs1v15Sign::new::<Sha512>(), &Sha512::digest(message)),
            SignatureScheme::RSA_PKCS1_SHA384 => self.key.sign(Pkcs1v15Sign::new::<Sha384>(), &Sha384::digest(message)),
            _ => self.key.sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(message)),
        };
        signed.map_err(|e| rustls::Error::General(format!("RSA signature: {e}")))
    }

    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }
}
