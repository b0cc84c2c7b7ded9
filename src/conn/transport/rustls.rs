//! Native TLS with rustls, for `sslmode` prefer/require/verify-ca/verify-full (libpq's semantics:
//! require encrypts without verifying; verify-ca checks the chain; verify-full also the host name;
//! the certificate checks are libpq's, see `verifier`), with a client certificate when one is
//! configured and ALPN `postgresql` for direct TLS connections.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
  AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, Error as TlsError, RootCertStore,
  SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::tls_alerts::{self, KEY_MISMATCH};
use super::verifier::LibpqVerifier;
use super::{tls_failure as failure, Socket, Stream, TlsFailure, TlsInfo, TlsOptions, ALPN_POSTGRESQL};
use crate::config::{KeyFormat, SslMode};
use crate::error::{describe_io, io_code, SocketError};

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

fn client_config(options: &TlsOptions<'_>) -> Result<ClientConfig, TlsFailure> {
  let provider = provider();
  let builder = ClientConfig::builder_with_provider(provider.clone())
    .with_safe_default_protocol_versions()
    .map_err(|e| failure("ERR_TLS", e.to_string()))?;
  let verifier: Arc<dyn ServerCertVerifier> = match options.mode {
    SslMode::Disable | SslMode::Prefer | SslMode::Require => Arc::new(NoVerification(provider.clone())),
    SslMode::VerifyCa | SslMode::VerifyFull => {
      let (store, root_certs) = roots(options.root_pem)?;
      let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider)
        .build()
        .map_err(|e| failure("ERR_TLS", e.to_string()))?;
      Arc::new(LibpqVerifier::new(webpki, root_certs, options.mode == SslMode::VerifyFull))
    }
  };
  let builder = builder.dangerous().with_custom_certificate_verifier(verifier);
  let mut config = match options.client_cert {
    None => builder.with_no_client_auth(),
    Some(cert) => {
      let chain = cert.chain().iter().map(|der| CertificateDer::from(der.clone())).collect();
      let key = match cert.key_format() {
        KeyFormat::Pkcs8 => PrivateKeyDer::Pkcs8(cert.key_der().to_vec().into()),
        KeyFormat::Pkcs1 => PrivateKeyDer::Pkcs1(cert.key_der().to_vec().into()),
        KeyFormat::Sec1 => PrivateKeyDer::Sec1(cert.key_der().to_vec().into()),
      };
      builder.with_client_auth_cert(chain, key).map_err(|e| match e {
        TlsError::InconsistentKeys(_) => {
          failure(KEY_MISMATCH, tls_alerts::describe(KEY_MISMATCH).unwrap_or_default())
        }
        // The key's algorithm was checked when the pool was created; ring refused it anyway.
        other => failure("ERR_TLS", format!("the client key cannot be used: {other}")),
      })?
    }
  };
  if options.alpn {
    config.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
  }
  Ok(config)
}

/// Node's code for a TLS alert from the server, where the alert concerns what the client sent
/// or could negotiate (see `tls_alerts`).
fn alert_code(alert: AlertDescription) -> Option<&'static str> {
  Some(match alert {
    AlertDescription::UnknownCA => "ERR_SSL_TLSV1_ALERT_UNKNOWN_CA",
    AlertDescription::BadCertificate => "ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE",
    AlertDescription::UnsupportedCertificate => "ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
    AlertDescription::CertificateRevoked => "ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED",
    AlertDescription::CertificateExpired => "ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED",
    AlertDescription::CertificateUnknown => "ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN",
    AlertDescription::CertificateRequired => "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED",
    AlertDescription::AccessDenied => "ERR_SSL_TLSV1_ALERT_ACCESS_DENIED",
    AlertDescription::DecryptError => "ERR_SSL_TLSV1_ALERT_DECRYPT_ERROR",
    AlertDescription::HandshakeFailure => "ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE",
    AlertDescription::ProtocolVersion => "ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION",
    AlertDescription::NoApplicationProtocol => "ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL",
    AlertDescription::InternalError => "ERR_SSL_TLSV1_ALERT_INTERNAL_ERROR",
    _ => return None,
  })
}

/// Node's code for a TLS failure, and what to say about it: an alert from the server gets the
/// message of `tls_alerts`; otherwise rustls's own words, with a note where they leave the cause
/// unclear.
fn tls_code(err: &std::io::Error) -> (String, String) {
  let Some(tls) = err.get_ref().and_then(|e| e.downcast_ref::<TlsError>()) else {
    if err.kind() == std::io::ErrorKind::UnexpectedEof {
      return ("ECONNRESET".into(), "the server closed the connection during the TLS handshake".into());
    }
    return (io_code(err), describe_io(err));
  };
  if let TlsError::AlertReceived(alert) = tls {
    if let Some(code) = alert_code(*alert) {
      return (code.to_string(), tls_alerts::describe(code).unwrap_or_default().to_string());
    }
  }
  let (code, note) = match tls {
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
  };
  (code.to_string(), format!("{tls}{note}"))
}

/// A client TLS stream. Its errors carry Node's codes (a client certificate the server refuses
/// under TLS 1.3 shows on the first read after the handshake), and it keeps what the handshake
/// learned for channel binding.
pub struct ClientTls(tokio_rustls::client::TlsStream<Socket>);

/// An I/O error of the TLS stream, with the code and message `tls_code` gives it.
fn with_node_code(err: std::io::Error) -> std::io::Error {
  if err.get_ref().and_then(|e| e.downcast_ref::<TlsError>()).is_none() {
    return err;
  }
  let (code, message) = tls_code(&err);
  std::io::Error::new(err.kind(), SocketError { code, message })
}

impl AsyncRead for ClientTls {
  fn poll_read(
    mut self: Pin<&mut Self>,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
  ) -> Poll<std::io::Result<()>> {
    Pin::new(&mut self.0).poll_read(cx, buf).map_err(with_node_code)
  }
}

impl AsyncWrite for ClientTls {
  fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
    Pin::new(&mut self.0).poll_write(cx, buf).map_err(with_node_code)
  }

  fn poll_write_vectored(
    mut self: Pin<&mut Self>,
    cx: &mut Context<'_>,
    bufs: &[std::io::IoSlice<'_>],
  ) -> Poll<std::io::Result<usize>> {
    Pin::new(&mut self.0).poll_write_vectored(cx, bufs).map_err(with_node_code)
  }

  fn is_write_vectored(&self) -> bool {
    self.0.is_write_vectored()
  }

  fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
    Pin::new(&mut self.0).poll_flush(cx).map_err(with_node_code)
  }

  fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
    Pin::new(&mut self.0).poll_shutdown(cx).map_err(with_node_code)
  }
}

/// The server certificate and ALPN protocol of a stream `start_tls` made.
pub fn tls_info(stream: &dyn Stream) -> Option<TlsInfo> {
  let tls = stream.as_any().downcast_ref::<ClientTls>()?;
  let (_, connection) = tls.0.get_ref();
  Some(TlsInfo {
    server_cert: connection.peer_certificates().and_then(|chain| chain.first()).map(|c| c.as_ref().to_vec()),
    alpn: connection.alpn_protocol().map(<[u8]>::to_vec),
  })
}

/// Wraps the socket in TLS (after the server agreed to it, or at once for a direct connection:
/// see `conn::tls::negotiate`).
pub async fn start_tls(socket: Socket, options: TlsOptions<'_>) -> Result<Box<dyn Stream>, TlsFailure> {
  let config = client_config(&options)?;
  let host = options.host;
  let name = ServerName::try_from(host.to_string())
    .map_err(|_| failure("ERR_TLS", format!("{host} is not a valid TLS server name")))?;
  let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
  let tls = connector.connect(name, socket).await.map_err(|e| {
    let (code, message) = tls_code(&e);
    failure(&code, format!("TLS handshake failed: {message}"))
  })?;
  Ok(Box::new(ClientTls(tls)))
}
