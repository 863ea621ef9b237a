//! A server certificate that is itself in the CA file, trusted as it is, as OpenSSL trusts it.
//!
//! A self-signed certificate made with `openssl req -x509` (and by many appliances) is marked as a CA, which
//! webpki refuses as a server's own certificate. When the user lists exactly that certificate in the CA file,
//! it is trusted like a pinned one, and its name and validity period are still checked.

use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::time::ASN1Time;

/// Whether `end_entity` is one of `listed` and valid for `server_name` at `now`; `Err` says why not.
pub(super) fn verify(
    end_entity: &CertificateDer<'_>,
    listed: &[CertificateDer<'static>],
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> Result<(), String> {
    if !listed.iter().any(|cert| cert.as_ref() == end_entity.as_ref()) {
        return Err("it is a CA certificate, used as the server's own certificate".into());
    }
    let name_ok = webpki::EndEntityCert::try_from(end_entity)
        .map_err(|e| format!("it cannot be parsed: {e:?}"))?
        .verify_is_valid_for_subject_name(server_name)
        .is_ok();
    if !name_ok {
        return Err(format!("it is not valid for the name {}", server_name.to_str()));
    }
    let (_, cert) = X509Certificate::from_der(end_entity).map_err(|e| format!("it cannot be parsed: {e}"))?;
    let now = i64::try_from(now.as_secs()).ok().and_then(|secs| ASN1Time::from_timestamp(secs).ok());
    match now {
        Some(now) if cert.validity().is_valid_at(now) => Ok(()),
        _ => Err(format!(
            "it is not valid now (only from {} to {})",
            cert.validity().not_before,
            cert.validity().not_after
        )),
    }
}
