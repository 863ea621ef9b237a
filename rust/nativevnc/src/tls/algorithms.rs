//! The signature algorithms the TLS client verifies with: ring's, except that RSA keys of 1024 to 2047 bits,
//! which ring refuses, are verified with RustCrypto's `rsa` crate instead.
//!
//! ESXi hosts and vCenters (and VMware's own simulator, vcsim) may present certificates with 1024-bit RSA keys.
//! Refusing them would leave a user who pinned such a certificate, or trusts its issuer, no way in but turning
//! verification off; verifying them with a second, well-kept implementation keeps the handshake authenticated.
//! The same algorithms serve the certificate chain (webpki) and the handshake signatures (TLS 1.2 and 1.3).

use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::signature::digest::{Digest, DynDigest};
use rsa::{Pkcs1v15Sign, Pss, RsaPublicKey};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{AlgorithmIdentifier, InvalidSignature, SignatureVerificationAlgorithm};
use rustls::SignatureScheme;
use sha2::{Sha256, Sha384, Sha512};
use webpki::ring as ring_algs;

/// The smallest RSA key verified at all, in bits: smaller keys can be factored by a determined attacker.
pub(super) const MIN_RSA_BITS: usize = 1024;

/// The smallest RSA key ring verifies, in bits; smaller ones (down to [`MIN_RSA_BITS`]) go to `rsa`.
pub(super) const RING_MIN_RSA_BITS: usize = 2048;

/// ring's algorithms as rustls's ring provider lists them, with every RSA one extended to small keys.
pub(super) static SUPPORTED: WebPkiSupportedAlgorithms = WebPkiSupportedAlgorithms {
    all: &[
        ring_algs::ECDSA_P256_SHA256,
        ring_algs::ECDSA_P256_SHA384,
        ring_algs::ECDSA_P384_SHA256,
        ring_algs::ECDSA_P384_SHA384,
        ring_algs::ED25519,
        &RSA_PSS_SHA256,
        &RSA_PSS_SHA384,
        &RSA_PSS_SHA512,
        &RSA_PKCS1_SHA256,
        &RSA_PKCS1_SHA384,
        &RSA_PKCS1_SHA512,
        &RSA_PKCS1_SHA256_ABSENT_PARAMS,
        &RSA_PKCS1_SHA384_ABSENT_PARAMS,
        &RSA_PKCS1_SHA512_ABSENT_PARAMS,
    ],
    mapping: &[
        (SignatureScheme::ECDSA_NISTP384_SHA384, &[ring_algs::ECDSA_P384_SHA384, ring_algs::ECDSA_P256_SHA384]),
        (SignatureScheme::ECDSA_NISTP256_SHA256, &[ring_algs::ECDSA_P256_SHA256, ring_algs::ECDSA_P384_SHA256]),
        (SignatureScheme::ED25519, &[ring_algs::ED25519]),
        (SignatureScheme::RSA_PSS_SHA512, &[&RSA_PSS_SHA512]),
        (SignatureScheme::RSA_PSS_SHA384, &[&RSA_PSS_SHA384]),
        (SignatureScheme::RSA_PSS_SHA256, &[&RSA_PSS_SHA256]),
        (SignatureScheme::RSA_PKCS1_SHA512, &[&RSA_PKCS1_SHA512]),
        (SignatureScheme::RSA_PKCS1_SHA384, &[&RSA_PKCS1_SHA384]),
        (SignatureScheme::RSA_PKCS1_SHA256, &[&RSA_PKCS1_SHA256]),
    ],
};

static RSA_PSS_SHA256: SmallKeyRsa =
    SmallKeyRsa { ring: ring_algs::RSA_PSS_2048_8192_SHA256_LEGACY_KEY, padding: Padding::Pss, hash: Hash::Sha256 };
static RSA_PSS_SHA384: SmallKeyRsa =
    SmallKeyRsa { ring: ring_algs::RSA_PSS_2048_8192_SHA384_LEGACY_KEY, padding: Padding::Pss, hash: Hash::Sha384 };
static RSA_PSS_SHA512: SmallKeyRsa =
    SmallKeyRsa { ring: ring_algs::RSA_PSS_2048_8192_SHA512_LEGACY_KEY, padding: Padding::Pss, hash: Hash::Sha512 };
static RSA_PKCS1_SHA256: SmallKeyRsa =
    SmallKeyRsa { ring: ring_algs::RSA_PKCS1_2048_8192_SHA256, padding: Padding::Pkcs1, hash: Hash::Sha256 };
static RSA_PKCS1_SHA384: SmallKeyRsa =
    SmallKeyRsa { ring: ring_algs::RSA_PKCS1_2048_8192_SHA384, padding: Padding::Pkcs1, hash: Hash::Sha384 };
static RSA_PKCS1_SHA512: SmallKeyRsa =
    SmallKeyRsa { ring: ring_algs::RSA_PKCS1_2048_8192_SHA512, padding: Padding::Pkcs1, hash: Hash::Sha512 };
static RSA_PKCS1_SHA256_ABSENT_PARAMS: SmallKeyRsa = SmallKeyRsa {
    ring: ring_algs::RSA_PKCS1_2048_8192_SHA256_ABSENT_PARAMS,
    padding: Padding::Pkcs1,
    hash: Hash::Sha256,
};
static RSA_PKCS1_SHA384_ABSENT_PARAMS: SmallKeyRsa = SmallKeyRsa {
    ring: ring_algs::RSA_PKCS1_2048_8192_SHA384_ABSENT_PARAMS,
    padding: Padding::Pkcs1,
    hash: Hash::Sha384,
};
static RSA_PKCS1_SHA512_ABSENT_PARAMS: SmallKeyRsa = SmallKeyRsa {
    ring: ring_algs::RSA_PKCS1_2048_8192_SHA512_ABSENT_PARAMS,
    padding: Padding::Pkcs1,
    hash: Hash::Sha512,
};

#[derive(Debug, Clone, Copy)]
enum Padding {
    Pkcs1,
    /// RSASSA-PSS with MGF1 over the same hash and a salt as long as the hash, as TLS and webpki require.
    Pss,
}

#[derive(Debug, Clone, Copy)]
enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

/// One of ring's RSA algorithms; keys it refuses for their size alone are verified with `rsa` if they have
/// at least [`MIN_RSA_BITS`].
#[derive(Debug)]
struct SmallKeyRsa {
    ring: &'static dyn SignatureVerificationAlgorithm,
    padding: Padding,
    hash: Hash,
}

impl SmallKeyRsa {
    /// Verification with `rsa`, for a PKCS#1 `RSAPublicKey` of [`MIN_RSA_BITS`] to [`RING_MIN_RSA_BITS`] bits.
    fn verify_small(&self, public_key: &[u8], message: &[u8], signature: &[u8]) -> Result<(), InvalidSignature> {
        let key = RsaPublicKey::from_pkcs1_der(public_key).map_err(|_| InvalidSignature)?;
        if !(MIN_RSA_BITS..RING_MIN_RSA_BITS).contains(&rsa_bits(&key)) {
            return Err(InvalidSignature);
        }
        match self.hash {
            Hash::Sha256 => self.verify_with::<Sha256>(&key, message, signature),
            Hash::Sha384 => self.verify_with::<Sha384>(&key, message, signature),
            Hash::Sha512 => self.verify_with::<Sha512>(&key, message, signature),
        }
    }

    fn verify_with<D>(&self, key: &RsaPublicKey, message: &[u8], signature: &[u8]) -> Result<(), InvalidSignature>
    where
        D: 'static + Digest + DynDigest + rsa::pkcs8::AssociatedOid + Send + Sync,
    {
        let hashed = D::digest(message);
        let verified = match self.padding {
            Padding::Pkcs1 => key.verify(Pkcs1v15Sign::new::<D>(), &hashed, signature),
            Padding::Pss => key.verify(Pss::new::<D>(), &hashed, signature),
        };
        verified.map_err(|_| InvalidSignature)
    }
}

impl SignatureVerificationAlgorithm for SmallKeyRsa {
    fn verify_signature(&self, public_key: &[u8], message: &[u8], signature: &[u8]) -> Result<(), InvalidSignature> {
        self.ring
            .verify_signature(public_key, message, signature)
            .or_else(|_| self.verify_small(public_key, message, signature))
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        self.ring.public_key_alg_id()
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        self.ring.signature_alg_id()
    }

    fn fips(&self) -> bool {
        false
    }
}

/// The size of an RSA key's modulus in bits.
fn rsa_bits(key: &RsaPublicKey) -> usize {
    use rsa::traits::PublicKeyParts;
    key.n().bits()
}

#[cfg(test)]
mod tests {
    use super::*;

    use rsa::pkcs1::EncodeRsaPublicKey;
    use rsa::RsaPrivateKey;

    fn key_pair(bits: usize) -> (RsaPrivateKey, Vec<u8>) {
        let private = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits).expect("generate an RSA key");
        let public = private.to_public_key().to_pkcs1_der().expect("encode the public key").as_bytes().to_vec();
        (private, public)
    }

    #[test]
    fn small_keys_verify_with_both_paddings_and_wrong_signatures_do_not() {
        let (private, public) = key_pair(1024);
        let message = b"TLS 1.3, server CertificateVerify";
        let hashed = Sha256::digest(message);
        let pkcs1 = private.sign(Pkcs1v15Sign::new::<Sha256>(), &hashed).unwrap();
        let pss = private.sign_with_rng(&mut rsa::rand_core::OsRng, Pss::new::<Sha256>(), &hashed).unwrap();

        assert!(RSA_PKCS1_SHA256.verify_signature(&public, message, &pkcs1).is_ok());
        assert!(RSA_PSS_SHA256.verify_signature(&public, message, &pss).is_ok());
        assert!(RSA_PKCS1_SHA256.verify_signature(&public, b"another message", &pkcs1).is_err());
        assert!(RSA_PSS_SHA256.verify_signature(&public, message, &pkcs1).is_err());
        assert!(RSA_PKCS1_SHA384.verify_signature(&public, message, &pkcs1).is_err());
    }

    #[test]
    fn keys_below_the_minimum_are_refused() {
        let (private, public) = key_pair(768);
        let message = b"a handshake";
        let signature = private.sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(message)).unwrap();
        assert!(RSA_PKCS1_SHA256.verify_signature(&public, message, &signature).is_err());
    }
}
