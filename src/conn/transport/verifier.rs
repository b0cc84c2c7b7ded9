//! The server certificate checks of sslmode verify-ca and verify-full, as libpq makes them.
//!
//! webpki (rustls's `WebPkiServerVerifier`) checks the chain. libpq, through OpenSSL, accepts two
//! things webpki does not, and the PostgreSQL docs' self-signed recipe needs both
//! (`openssl req -new -x509 -nodes -subj "/CN=dbhost" ...`, then `sslrootcert=server.crt`):
//! - a server certificate that is itself one of the sslrootcert certificates. That recipe makes a
//!   CA certificate, which webpki refuses as an end entity (`CaUsedAsEndEntity`); OpenSSL finds
//!   it in the trust store and takes it as a chain of one;
//! - a host name found only in the subject's common name (that recipe has no subjectAltName).
//!   libpq matches the common name when the certificate has no subjectAltName of the host's kind
//!   (DNS name or IP address); webpki never reads it.
//!
//! Everything else stays webpki's: chains, signatures and subjectAltName matching. A certificate
//! that is its own root keeps the checks a chain of one has: its validity period and extended key
//! usage.

use std::net::IpAddr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_name, WebPkiServerVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, Error as TlsError, SignatureScheme};
use x509_cert::der::oid::db::rfc5280::ID_KP_SERVER_AUTH;
use x509_cert::der::Decode;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{ExtendedKeyUsage, SubjectAltName};
use x509_cert::Certificate;

#[derive(Debug)]
pub struct LibpqVerifier {
  webpki: Arc<WebPkiServerVerifier>,
  /// The sslrootcert certificates (none with the public roots), to recognise a server
  /// certificate that is one of them.
  roots: Vec<CertificateDer<'static>>,
  /// verify-full; verify-ca does not check the host name.
  check_host_name: bool,
}

impl LibpqVerifier {
  pub fn new(
    webpki: Arc<WebPkiServerVerifier>,
    roots: Vec<CertificateDer<'static>>,
    check_host_name: bool,
  ) -> Self {
    LibpqVerifier { webpki, roots, check_host_name }
  }
}

impl ServerCertVerifier for LibpqVerifier {
  fn verify_server_cert(
    &self,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    server_name: &ServerName<'_>,
    ocsp: &[u8],
    now: UnixTime,
  ) -> Result<ServerCertVerified, TlsError> {
    let is_a_root = self.roots.iter().any(|root| root.as_ref() == end_entity.as_ref());
    if is_a_root {
      // Trusted for its bytes, like OpenSSL's chain of one. Its self-signature is not checked
      // (OpenSSL skips it too: it adds nothing to a certificate trusted as it is); the handshake
      // signature, checked below with its key, proves the server holds that key.
      check_as_own_root(&parse(end_entity)?, now)?;
    } else {
      match self.webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
        Ok(verified) => return Ok(verified),
        // webpki checks the name last: the chain is good, and the name is checked below.
        Err(e) if is_name_mismatch(&e) => {}
        Err(e) if is_ca_used_as_end_entity(&e) && parse(end_entity).is_ok_and(|c| is_self_issued(&c)) => {
          // A self-signed certificate that is none of the roots: untrusted, as OpenSSL says.
          return Err(CertificateError::UnknownIssuer.into());
        }
        Err(e) => return Err(e),
      }
    }
    if self.check_host_name {
      check_host_name(end_entity, server_name)?;
    }
    Ok(ServerCertVerified::assertion())
  }

  fn verify_tls12_signature(
    &self,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
  ) -> Result<HandshakeSignatureValid, TlsError> {
    self.webpki.verify_tls12_signature(message, cert, dss)
  }

  fn verify_tls13_signature(
    &self,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
  ) -> Result<HandshakeSignatureValid, TlsError> {
    self.webpki.verify_tls13_signature(message, cert, dss)
  }

  fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
    self.webpki.supported_verify_schemes()
  }
}

fn parse(der: &CertificateDer<'_>) -> Result<Certificate, TlsError> {
  Certificate::from_der(der.as_ref()).map_err(|_| CertificateError::BadEncoding.into())
}

fn is_name_mismatch(e: &TlsError) -> bool {
  matches!(
    e,
    TlsError::InvalidCertificate(CertificateError::NotValidForName)
      | TlsError::InvalidCertificate(CertificateError::NotValidForNameContext { .. })
  )
}

fn is_ca_used_as_end_entity(e: &TlsError) -> bool {
  match e {
    TlsError::InvalidCertificate(CertificateError::Other(other)) => {
      matches!(other.0.downcast_ref::<webpki::Error>(), Some(webpki::Error::CaUsedAsEndEntity))
    }
    _ => false,
  }
}

fn is_self_issued(cert: &Certificate) -> bool {
  cert.tbs_certificate().subject() == cert.tbs_certificate().issuer()
}

/// What a chain of one still checks: the validity period and, when the certificate restricts
/// its use, that TLS servers are among its uses.
fn check_as_own_root(cert: &Certificate, now: UnixTime) -> Result<(), TlsError> {
  let validity = cert.tbs_certificate().validity();
  let not_before = UnixTime::since_unix_epoch(validity.not_before.to_unix_duration());
  let not_after = UnixTime::since_unix_epoch(validity.not_after.to_unix_duration());
  if now < not_before {
    return Err(CertificateError::NotValidYetContext { time: now, not_before }.into());
  }
  if now > not_after {
    return Err(CertificateError::ExpiredContext { time: now, not_after }.into());
  }
  let usage = cert
    .tbs_certificate()
    .get_extension::<ExtendedKeyUsage>()
    .map_err(|_| TlsError::InvalidCertificate(CertificateError::BadEncoding))?;
  if let Some((_, ExtendedKeyUsage(purposes))) = usage {
    // serverAuth itself, as webpki and OpenSSL require (anyExtendedKeyUsage does not do).
    if !purposes.contains(&ID_KP_SERVER_AUTH) {
      return Err(CertificateError::InvalidPurpose.into());
    }
  }
  Ok(())
}

/// libpq's rule (fe-secure-openssl.c): the subjectAltName entries when the certificate has one of
/// the host's kind, else the subject's common name.
fn check_host_name(end_entity: &CertificateDer<'_>, server_name: &ServerName<'_>) -> Result<(), TlsError> {
  let by_alt_names = || verify_server_name(&ParsedCertificate::try_from(end_entity)?, server_name);
  // A certificate that x509-cert cannot read (webpki could): its subjectAltName check stands.
  let Ok(cert) = parse(end_entity) else { return by_alt_names() };
  let Ok(alt_names) = cert.tbs_certificate().get_extension::<SubjectAltName>() else { return by_alt_names() };
  let of_host_kind = |name: &GeneralName| match server_name {
    ServerName::IpAddress(_) => matches!(name, GeneralName::IpAddress(_)),
    _ => matches!(name, GeneralName::DnsName(_)),
  };
  if alt_names.is_some_and(|(_, SubjectAltName(names))| names.iter().any(of_host_kind)) {
    return by_alt_names();
  }
  let common_name =
    cert.tbs_certificate().subject().common_name().ok().flatten().map(|cn| cn.value().into_owned());
  match common_name {
    Some(cn) if common_name_matches(&cn, server_name) => Ok(()),
    cn => Err(
      CertificateError::NotValidForNameContext {
        expected: server_name.to_owned(),
        presented: cn.map(|cn| format!("its common name {cn:?}")).into_iter().collect(),
      }
      .into(),
    ),
  }
}

/// libpq's comparison: case-insensitive, with a `*.` prefix matching one whole label.
fn common_name_matches(cn: &str, server_name: &ServerName<'_>) -> bool {
  if cn.contains('\0') {
    return false;
  }
  match server_name {
    ServerName::IpAddress(ip) => cn.parse::<IpAddr>().is_ok_and(|cn| cn == IpAddr::from(*ip)),
    ServerName::DnsName(host) => {
      let host = host.as_ref();
      cn.eq_ignore_ascii_case(host) || wildcard_matches(cn, host)
    }
    _ => false,
  }
}

fn wildcard_matches(pattern: &str, host: &str) -> bool {
  let Some(suffix) = pattern.strip_prefix('*') else { return false };
  let label_len = host.len().saturating_sub(suffix.len());
  if !suffix.starts_with('.') || suffix.len() < 2 || label_len == 0 || !host.is_char_boundary(label_len) {
    return false;
  }
  let (label, rest) = host.split_at(label_len);
  !label.contains('.') && rest.eq_ignore_ascii_case(suffix)
}

#[cfg(test)]
mod tests {
  use super::*;

  fn dns(name: &str) -> ServerName<'static> {
    ServerName::try_from(name.to_string()).expect("a DNS name")
  }

  fn ip(addr: &str) -> ServerName<'static> {
    ServerName::IpAddress(addr.parse::<IpAddr>().expect("an IP address").into())
  }

  #[test]
  fn a_common_name_matches_its_host_as_libpq_compares() {
    assert!(common_name_matches("localhost", &dns("localhost")));
    assert!(common_name_matches("DB.Example.com", &dns("db.example.com")));
    assert!(!common_name_matches("localhost", &dns("localhost.localdomain")));
    assert!(!common_name_matches("localhost\0.evil", &dns("localhost")));
    assert!(common_name_matches("127.0.0.1", &ip("127.0.0.1")));
    assert!(common_name_matches("0:0::1", &ip("::1")));
    assert!(!common_name_matches("localhost", &ip("127.0.0.1")));
    assert!(!common_name_matches("127.0.0.2", &ip("127.0.0.1")));
  }

  #[test]
  fn a_wildcard_stands_for_one_whole_first_label() {
    assert!(common_name_matches("*.example.com", &dns("db.example.com")));
    assert!(common_name_matches("*.EXAMPLE.com", &dns("db.example.com")));
    assert!(!common_name_matches("*.example.com", &dns("a.db.example.com")));
    assert!(!common_name_matches("*.example.com", &dns("example.com")));
    assert!(!common_name_matches("*.", &dns("db")));
    assert!(!common_name_matches("d*.example.com", &dns("db.example.com")));
    assert!(!common_name_matches("*example.com", &dns("db.example.com")));
  }
}
