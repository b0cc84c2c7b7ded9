//! Native TLS with rustls, for `sslmode` prefer/require/verify-ca/verify-full (libpq's semantics:
//! require encrypts without verifying; verify-ca checks the chain; verify-full also the host name;
//! the certificate checks are libpq's, see `verifier`).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
  CertificateError, ClientConfig, DigitallySignedStruct, Error as TlsError, RootCertStore, SignatureScheme,
};

use super::verifier::LibpqVerifier;
use super::{tls_failure as failure, Socket, Stream, TlsFailure};
use crate::config::SslMode;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
  Arc::new(rustls::crypto::ring::default_provider())
}

/// The trust anchors, and the sslrootcert certificates themselves (a server certificate may be
/// one of them: see `verifier`).
fn roots(root_pem: Option<&str>) -> Result<(RootCertStore, Vec<CertificateDer<'static>>), TlsFailure> {
  let mut store = RootCertStore::empty();
  let mut certs = Vec::new();
  match root_pem {
    Some(pem) => {
      for cert in rustls_pki_types::pem::PemObject::pem_slice_iter(pem.as_bytes()) {
        let cert: CertificateDer<'static> = cert
          .map_err(|e| failure("ERR_TLS_ROOT_CERT", format!("cannot read the root certificate: {e:?}")))?;
        store
          .add(cert.clone())
          .map_err(|e| failure("ERR_TLS_ROOT_CERT", format!("invalid root certificate: {e}")))?;
        certs.push(cert);
      }
      if store.is_empty() {
        return Err(failure("ERR_TLS_ROOT_CERT", "the root certificate file holds no certificate"));
      }
    }
    None => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
  }
  Ok((store, certs))
}

/// Accepts any certificate (sslmode prefer/require) but still checks the handshake signatures.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerification {
  fn verify_server_cert(
    &self,
    _end_entity: &CertificateDer<'_>,
    _intermediates: &[CertificateDer<'_>],
    _server_name: &ServerName<'_>,
    _ocsp: &[u8],
    _now: UnixTime,
  ) -> Result<ServerCertVerified, TlsError> {
    Ok(ServerCertVerified::assertion())
  }

  fn verify_tls12_signature(
    &self,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
  ) -> Result<HandshakeSignatureValid, TlsError> {
    rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
  }

  fn verify_tls13_signature(
    &self,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
  ) -> Result<HandshakeSignatureValid, TlsError> {
    rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
  }

  fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
    self.0.signature_verification_algorithms.supported_schemes()
  }
}

fn client_config(mode: SslMode, root_pem: Option<&str>) -> Result<ClientConfig, TlsFailure> {
  let provider = provider();
  let builder = ClientConfig::builder_with_provider(provider.clone())
    .with_safe_default_protocol_versions()
    .map_err(|e| failure("ERR_TLS", e.to_string()))?;
  let config = match mode {
    SslMode::Disable | SslMode::Prefer | SslMode::Require => builder
      .dangerous()
      .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
      .with_no_client_auth(),
    SslMode::VerifyCa | SslMode::VerifyFull => {
      let (store, root_certs) = roots(root_pem)?;
      let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider)
        .build()
        .map_err(|e| failure("ERR_TLS", e.to_string()))?;
      let verifier = LibpqVerifier::new(webpki, root_certs, mode == SslMode::VerifyFull);
      builder.dangerous().with_custom_certificate_verifier(Arc::new(verifier)).with_no_client_auth()
    }
  };
  Ok(config)
}

/// Node's code for a failed handshake, and a note where rustls's own words leave the cause unclear.
fn tls_code(err: &std::io::Error) -> (&'static str, &'static str) {
  let Some(tls) = err.get_ref().and_then(|e| e.downcast_ref::<TlsError>()) else { return ("ERR_TLS", "") };
  match tls {
    TlsError::InvalidCertificate(CertificateError::NotValidForName)
    | TlsError::InvalidCertificate(CertificateError::NotValidForNameContext { .. }) => {
      ("ERR_TLS_CERT_ALTNAME_INVALID", "")
    }
    TlsError::InvalidCertificate(CertificateError::UnknownIssuer) => (
      "SELF_SIGNED_CERT_IN_CHAIN",
      " (the server's certificate is neither one of the trusted root certificates nor issued by one)",
    ),
    TlsError::InvalidCertificate(CertificateError::Expired)
    | TlsError::InvalidCertificate(CertificateError::ExpiredContext { .. }) => ("CERT_HAS_EXPIRED", ""),
    TlsError::InvalidCertificate(CertificateError::Other(other))
      if matches!(other.0.downcast_ref::<webpki::Error>(), Some(webpki::Error::UnsupportedCertVersion)) =>
    {
      // `openssl x509 -req` without -extfile makes one (the PostgreSQL docs' chain recipe); webpki
      // verifies version 3 only.
      (
        "ERR_TLS",
        " (the server's certificate is X.509 version 1, which the native build cannot verify: \
         reissue it with extensions, e.g. `openssl x509 -req ... -extfile` with subjectAltName=DNS:<host>)",
      )
    }
    _ => ("ERR_TLS", ""),
  }
}

/// Wraps the socket in TLS once the server agreed to it (see `conn::tls::negotiate`).
pub async fn start_tls(
  socket: Socket,
  mode: SslMode,
  host: &str,
  root_pem: Option<&str>,
) -> Result<Box<dyn Stream>, TlsFailure> {
  let config = client_config(mode, root_pem)?;
  let name = ServerName::try_from(host.to_string())
    .map_err(|_| failure("ERR_TLS", format!("{host} is not a valid TLS server name")))?;
  let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
  let tls = connector.connect(name, socket).await.map_err(|e| {
    let (code, note) = tls_code(&e);
    failure(code, format!("TLS handshake failed: {e}{note}"))
  })?;
  Ok(Box::new(tls))
}
