//! Native TLS with rustls, for `sslmode` prefer/require/verify-ca/verify-full (libpq's semantics:
//! require encrypts without verifying; verify-ca checks the chain; verify-full also the host name).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
  CertificateError, ClientConfig, DigitallySignedStruct, Error as TlsError, RootCertStore, SignatureScheme,
};

use super::{tls_failure as failure, Socket, Stream, TlsFailure};
use crate::config::SslMode;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
  Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(root_pem: Option<&str>) -> Result<RootCertStore, TlsFailure> {
  let mut store = RootCertStore::empty();
  match root_pem {
    Some(pem) => {
      for cert in rustls_pki_types::pem::PemObject::pem_slice_iter(pem.as_bytes()) {
        let cert: CertificateDer<'static> = cert
          .map_err(|e| failure("ERR_TLS_ROOT_CERT", format!("cannot read the root certificate: {e:?}")))?;
        store
          .add(cert)
          .map_err(|e| failure("ERR_TLS_ROOT_CERT", format!("invalid root certificate: {e}")))?;
      }
      if store.is_empty() {
        return Err(failure("ERR_TLS_ROOT_CERT", "the root certificate file holds no certificate"));
      }
    }
    None => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
  }
  Ok(store)
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

/// Checks the chain but not the host name (sslmode verify-ca).
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
  fn verify_server_cert(
    &self,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    server_name: &ServerName<'_>,
    ocsp: &[u8],
    now: UnixTime,
  ) -> Result<ServerCertVerified, TlsError> {
    match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
      Err(TlsError::InvalidCertificate(CertificateError::NotValidForName))
      | Err(TlsError::InvalidCertificate(CertificateError::NotValidForNameContext { .. })) => {
        Ok(ServerCertVerified::assertion())
      }
      other => other,
    }
  }

  fn verify_tls12_signature(
    &self,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
  ) -> Result<HandshakeSignatureValid, TlsError> {
    self.0.verify_tls12_signature(message, cert, dss)
  }

  fn verify_tls13_signature(
    &self,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
  ) -> Result<HandshakeSignatureValid, TlsError> {
    self.0.verify_tls13_signature(message, cert, dss)
  }

  fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
    self.0.supported_verify_schemes()
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
      let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots(root_pem)?), provider)
        .build()
        .map_err(|e| failure("ERR_TLS", e.to_string()))?;
      if mode == SslMode::VerifyCa {
        builder
          .dangerous()
          .with_custom_certificate_verifier(Arc::new(ChainOnly(verifier)))
          .with_no_client_auth()
      } else {
        builder.with_webpki_verifier(verifier).with_no_client_auth()
      }
    }
  };
  Ok(config)
}

fn tls_code(err: &std::io::Error) -> &'static str {
  let Some(tls) = err.get_ref().and_then(|e| e.downcast_ref::<TlsError>()) else { return "ERR_TLS" };
  match tls {
    TlsError::InvalidCertificate(CertificateError::NotValidForName)
    | TlsError::InvalidCertificate(CertificateError::NotValidForNameContext { .. }) => {
      "ERR_TLS_CERT_ALTNAME_INVALID"
    }
    TlsError::InvalidCertificate(CertificateError::UnknownIssuer) => "SELF_SIGNED_CERT_IN_CHAIN",
    TlsError::InvalidCertificate(CertificateError::Expired)
    | TlsError::InvalidCertificate(CertificateError::ExpiredContext { .. }) => "CERT_HAS_EXPIRED",
    _ => "ERR_TLS",
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
    let code = tls_code(&e);
    failure(code, format!("TLS handshake failed: {e}"))
  })?;
  Ok(Box::new(tls))
}
