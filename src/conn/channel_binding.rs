//! SCRAM channel binding, as libpq's `channel_binding` (`disable`, `prefer`, `require`).
//!
//! Over TLS the client proves, inside SCRAM-SHA-256-PLUS, which server certificate it saw: the
//! `tls-server-end-point` binding (RFC 5929), a hash of that certificate. A man in the middle who
//! terminates TLS with a certificate of its own (which sslmode=require does not check) cannot
//! relay such an authentication: the server compares the hash with its own certificate's.
//!
//! libpq's rules, which onepool follows:
//! - the GS2 flag says what the client can do: `p=tls-server-end-point` when it binds, `y` when it
//!   could but the server offered no SCRAM-SHA-256-PLUS (so the server can detect a downgrade), `n`
//!   without TLS;
//! - under `require`, authentication must end bound: a server that asks for a password in the
//!   clear or MD5, or lets the client in without SCRAM (trust, a certificate), is refused.
//!
//! Where libpq fails onepool stays lenient for `prefer`: a server certificate whose signature
//! algorithm names no hash (Ed25519) has no end-point hash, so SCRAM runs unbound with `n`; a
//! server offering SCRAM-SHA-256-PLUS on a plaintext connection (a proxy that terminates TLS in
//! front of it) gets SCRAM-SHA-256 with `n`, which it accepts.

use pkcs8::der::oid::ObjectIdentifier;
use pkcs8::der::Decode;
use postgres_protocol::authentication::sasl;
use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};
use x509_cert::Certificate;

use super::transport::{self, Stream};
use crate::config::ChannelBinding;

/// What the connection offers for binding.
enum Channel {
  Plaintext,
  /// TLS, with the server certificate's `tls-server-end-point` hash, or why it has none.
  Tls(Result<Vec<u8>, String>),
}

/// Chooses the SASL mechanism and checks, at the end, that authentication was bound when it
/// had to be.
pub struct Binder {
  mode: ChannelBinding,
  channel: Channel,
  /// SCRAM-SHA-256-PLUS was used.
  bound: bool,
}

impl Binder {
  pub fn new(mode: ChannelBinding, stream: &dyn Stream) -> Binder {
    let channel = match transport::tls_info(stream) {
      None => Channel::Plaintext,
      Some(info) => Channel::Tls(match info.server_cert {
        Some(cert) => tls_server_end_point(&cert),
        None => Err("the server sent no certificate".into()),
      }),
    };
    Binder { mode, channel, bound: false }
  }

  /// The mechanism to answer the server's SASL offer with, and the binding it carries.
  pub fn scram(&mut self, offered: &[String]) -> Result<(&'static str, sasl::ChannelBinding), String> {
    let offers = |m: &str| offered.iter().any(|o| o == m);
    let require = self.mode == ChannelBinding::Require;
    if self.mode != ChannelBinding::Disable && offers(sasl::SCRAM_SHA_256_PLUS) {
      match &self.channel {
        Channel::Tls(Ok(hash)) => {
          self.bound = true;
          return Ok((sasl::SCRAM_SHA_256_PLUS, sasl::ChannelBinding::tls_server_end_point(hash.clone())));
        }
        Channel::Tls(Err(why)) if require => {
          return Err(format!("channel binding is required, but it cannot be computed: {why}"));
        }
        _ => {}
      }
    }
    if require {
      return Err(match self.channel {
        Channel::Plaintext => "channel binding is required, but the connection does not use TLS".into(),
        Channel::Tls(_) => "channel binding is required, but the server did not offer SCRAM-SHA-256-PLUS \
                            (a server older than PostgreSQL 11, or a proxy in front of it)"
          .into(),
      });
    }
    if !offers(sasl::SCRAM_SHA_256) {
      return Err("the server offered no supported SASL mechanism".into());
    }
    let flag = match (&self.channel, self.mode) {
      (Channel::Tls(Ok(_)), ChannelBinding::Prefer) => sasl::ChannelBinding::unrequested(),
      _ => sasl::ChannelBinding::unsupported(),
    };
    Ok((sasl::SCRAM_SHA_256, flag))
  }

  /// Before answering an authentication request other than SASL (cleartext password, MD5).
  pub fn check_other_method(&self) -> Result<(), String> {
    if self.mode == ChannelBinding::Require {
      return Err(
        "channel binding is required, but the server asked for a password without SCRAM \
                  (md5 or password in pg_hba.conf)"
          .into(),
      );
    }
    Ok(())
  }

  /// At AuthenticationOk.
  pub fn check_authenticated(&self) -> Result<(), String> {
    if self.mode == ChannelBinding::Require && !self.bound {
      return Err(
        "channel binding is required, but the server authenticated the client without it \
                  (trust or cert in pg_hba.conf)"
          .into(),
      );
    }
    Ok(())
  }
}

const MD5_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.4");
const SHA1_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.5");
const RSASSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const SHA384_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const SHA512_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const SHA224_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.14");
const ECDSA_WITH_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.1");
const ECDSA_WITH_SHA224: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.1");
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const ECDSA_WITH_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");
const DSA_WITH_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10040.4.3");
const DSA_WITH_SHA224: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.3.1");
const DSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.3.2");
const SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const SHA224: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.4");
const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hash {
  Sha224,
  Sha256,
  Sha384,
  Sha512,
}

/// RFC 5929's `tls-server-end-point`: the certificate hashed with the hash function of its
/// signature algorithm, SHA-256 where that is MD5 or SHA-1 (as the server computes it,
/// `be_tls_get_certificate_hash`).
pub fn tls_server_end_point(cert_der: &[u8]) -> Result<Vec<u8>, String> {
  let cert =
    Certificate::from_der(cert_der).map_err(|e| format!("the server's certificate cannot be read: {e}"))?;
  let algorithm = cert.signature_algorithm();
  let hash = match algorithm.oid {
    MD5_WITH_RSA | SHA1_WITH_RSA | ECDSA_WITH_SHA1 | DSA_WITH_SHA1 => Hash::Sha256,
    SHA224_WITH_RSA | ECDSA_WITH_SHA224 | DSA_WITH_SHA224 => Hash::Sha224,
    SHA256_WITH_RSA | ECDSA_WITH_SHA256 | DSA_WITH_SHA256 => Hash::Sha256,
    SHA384_WITH_RSA | ECDSA_WITH_SHA384 => Hash::Sha384,
    SHA512_WITH_RSA | ECDSA_WITH_SHA512 => Hash::Sha512,
    RSASSA_PSS => pss_hash(algorithm.parameters.as_ref())?,
    other => {
      return Err(format!(
        "the server certificate's signature algorithm ({other}) names no hash function for \
         tls-server-end-point (Ed25519 and Ed448 do not)"
      ))
    }
  };
  Ok(match hash {
    Hash::Sha224 => Sha224::digest(cert_der).to_vec(),
    Hash::Sha256 => Sha256::digest(cert_der).to_vec(),
    Hash::Sha384 => Sha384::digest(cert_der).to_vec(),
    Hash::Sha512 => Sha512::digest(cert_der).to_vec(),
  })
}

/// RSASSA-PSS names its hash in its parameters (SHA-1 when they leave it out).
fn pss_hash(parameters: Option<&pkcs8::der::Any>) -> Result<Hash, String> {
  let unreadable = || "the server certificate's RSASSA-PSS parameters cannot be read".to_string();
  let parameters = parameters.ok_or_else(unreadable)?;
  let pss = parameters.decode_as::<pkcs1::RsaPssParams<pkcs8::der::Any>>().map_err(|_| unreadable())?;
  match pss.hash.oid {
    SHA1 | SHA256 => Ok(Hash::Sha256),
    SHA224 => Ok(Hash::Sha224),
    SHA384 => Ok(Hash::Sha384),
    SHA512 => Ok(Hash::Sha512),
    other => Err(format!("the server certificate's RSASSA-PSS hash ({other}) is not supported")),
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn binder(mode: ChannelBinding, channel: Channel) -> Binder {
    Binder { mode, channel, bound: false }
  }

  fn offer(mechanisms: &[&str]) -> Vec<String> {
    mechanisms.iter().map(|m| m.to_string()).collect()
  }

  /// The mechanism chosen and the GS2 header of the first SCRAM message.
  fn choose(b: &mut Binder, offered: &[&str]) -> Result<(&'static str, String), String> {
    let (mechanism, binding) = b.scram(&offer(offered))?;
    let first = sasl::ScramSha256::new(b"pw", binding).message().to_vec();
    let header = String::from_utf8(first).unwrap().split(",n=").next().unwrap().to_string();
    Ok((mechanism, header))
  }

  const BOTH: &[&str] = &[sasl::SCRAM_SHA_256_PLUS, sasl::SCRAM_SHA_256];
  const PLAIN: &[&str] = &[sasl::SCRAM_SHA_256];
  const TLS: fn() -> Channel = || Channel::Tls(Ok(vec![7; 32]));
  const TLS_NO_HASH: fn() -> Channel = || Channel::Tls(Err("Ed25519".into()));

  #[test]
  fn prefer_binds_when_it_can_and_says_what_it_could_do_otherwise() {
    assert_eq!(
      choose(&mut binder(ChannelBinding::Prefer, TLS()), BOTH),
      Ok((sasl::SCRAM_SHA_256_PLUS, "p=tls-server-end-point,".into()))
    );
    // The server offered no PLUS over TLS: 'y' lets it detect a downgrade.
    assert_eq!(
      choose(&mut binder(ChannelBinding::Prefer, TLS()), PLAIN),
      Ok((sasl::SCRAM_SHA_256, "y,".into()))
    );
    assert_eq!(
      choose(&mut binder(ChannelBinding::Prefer, TLS_NO_HASH()), BOTH),
      Ok((sasl::SCRAM_SHA_256, "n,".into()))
    );
    assert_eq!(
      choose(&mut binder(ChannelBinding::Prefer, Channel::Plaintext), BOTH),
      Ok((sasl::SCRAM_SHA_256, "n,".into()))
    );
    assert_eq!(
      choose(&mut binder(ChannelBinding::Disable, TLS()), BOTH),
      Ok((sasl::SCRAM_SHA_256, "n,".into()))
    );
  }

  #[test]
  fn require_fails_unless_it_binds() {
    let mut bound = binder(ChannelBinding::Require, TLS());
    assert!(bound.check_authenticated().is_err(), "not bound yet");
    assert_eq!(choose(&mut bound, BOTH).map(|(m, _)| m), Ok(sasl::SCRAM_SHA_256_PLUS));
    assert_eq!(bound.check_authenticated(), Ok(()));
    for (channel, offered, why) in [
      (Channel::Plaintext, BOTH, "does not use TLS"),
      (TLS(), PLAIN, "did not offer SCRAM-SHA-256-PLUS"),
      (TLS_NO_HASH(), BOTH, "cannot be computed: Ed25519"),
    ] {
      let err = choose(&mut binder(ChannelBinding::Require, channel), offered).unwrap_err();
      assert!(err.contains(why), "{err}");
    }
    assert!(binder(ChannelBinding::Require, TLS()).check_other_method().is_err());
    assert!(binder(ChannelBinding::Prefer, TLS()).check_other_method().is_ok());
    assert!(binder(ChannelBinding::Prefer, TLS()).check_authenticated().is_ok());
  }

  #[test]
  fn no_scram_offered_is_an_error() {
    let err = choose(&mut binder(ChannelBinding::Prefer, TLS()), &["OAUTHBEARER"]).unwrap_err();
    assert_eq!(err, "the server offered no supported SASL mechanism");
  }
}
