//! TLS failures that concern the client certificate, under the codes Node gives them (OpenSSL's
//! reasons, `ERR_SSL_...`), with a message that says what to check. The WebAssembly build gets
//! these codes from node:tls; the native build maps rustls's errors to them (`rustls.rs`), so
//! both builds report a refused client certificate the same way.
//!
//! A server that refuses a client certificate says so with a TLS alert: during the handshake
//! under TLS 1.2, or right after it under TLS 1.3, where the client has finished its part before
//! the server checks the certificate. Either way the connection fails with `CONNECT_FAILED`.

/// Node's code for a certificate and key that do not belong together.
pub const KEY_MISMATCH: &str = "ERR_OSSL_X509_KEY_VALUES_MISMATCH";

/// What a failure with one of these codes means for the user.
pub fn describe(code: &str) -> Option<&'static str> {
  Some(match code {
    "ERR_SSL_TLSV1_ALERT_UNKNOWN_CA" => {
      "the server refused the client certificate: it is not issued by a CA the server trusts (its \
       ssl_ca_file) (TLS alert unknown_ca)"
    }
    "ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE"
    | "ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE"
    | "ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN" => {
      "the server refused the client certificate (TLS alert bad_certificate / certificate_unknown)"
    }
    "ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED" => {
      "the server refused the client certificate: it has expired or is not valid yet (TLS alert \
       certificate_expired)"
    }
    "ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED" => {
      "the server refused the client certificate: it is revoked (the server's ssl_crl_file) (TLS alert \
       certificate_revoked)"
    }
    "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED" => {
      "the server requires a client certificate and none was sent: set sslcert and sslkey (or ssl: \
       { cert, key }) (TLS alert certificate_required)"
    }
    "ERR_SSL_TLSV1_ALERT_ACCESS_DENIED" => "the server refused the connection (TLS alert access_denied)",
    "ERR_SSL_TLSV1_ALERT_DECRYPT_ERROR" => {
      "the server could not verify the client's handshake signature (TLS alert decrypt_error)"
    }
    "ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE" => {
      "the server ended the TLS handshake: no protocol version, cipher or signature scheme in common \
       (TLS alert handshake_failure)"
    }
    "ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION" => {
      "the server supports no TLS version in common (onepool speaks TLS 1.2 and 1.3) (TLS alert \
       protocol_version)"
    }
    "ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL" => {
      "the server does not speak ALPN \"postgresql\" (TLS alert no_application_protocol)"
    }
    "ERR_SSL_TLSV1_ALERT_INTERNAL_ERROR" => {
      "the server failed during the TLS handshake (TLS alert internal_error)"
    }
    KEY_MISMATCH => "the client certificate and its private key do not match (sslcert / sslkey)",
    _ => return None,
  })
}
