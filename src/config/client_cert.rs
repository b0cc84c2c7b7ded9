//! A client certificate and its private key, for servers that authenticate clients by
//! certificate (`hostssl ... cert`, `clientcert=verify-full`): libpq's `sslcert`/`sslkey`/
//! `sslpassword`, node-postgres's `ssl: { cert, key, passphrase }`.
//!
//! Both are read, and the key decrypted, when the pool is created: a wrong passphrase or a file
//! that holds no key is `CONFIG_INVALID` at `createPool`, not a failure of every connection later,
//! and both builds hand their TLS library (rustls, node:tls) the same clear key.
//!
//! Keys in PEM, as libpq reads them through OpenSSL:
//! - clear: PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`), SEC1 (`EC PRIVATE KEY`);
//! - encrypted PKCS#8 (`ENCRYPTED PRIVATE KEY`, what `openssl pkcs8 -topk8 -v2 aes-256-cbc` and
//!   OpenSSL 3's `genpkey -aes256` make): PBES2 with PBKDF2 (HMAC-SHA-1/-224/-256/-384/-512) or
//!   scrypt, and AES-CBC, AES-GCM or DES-EDE3-CBC, through RustCrypto's `pkcs8`;
//! - OpenSSL's traditional encryption (`Proc-Type: 4,ENCRYPTED` with `DEK-Info`, what
//!   `openssl rsa -aes256 -traditional` and OpenSSL 1.x's `genrsa -aes256` make) with AES-128/
//!   192/256-CBC or DES-EDE3-CBC. Its key derivation is OpenSSL's EVP_BytesToKey (one round of
//!   MD5, as OpenSSL uses for this format), written out below over the `md-5` crate.
//!
//! PBES1 (`openssl pkcs8 -v1 ...`) and single DES are refused, saying so. The key's algorithm
//! must be one rustls signs with (RSA, ECDSA P-256 or P-384, Ed25519): the WebAssembly build's
//! OpenSSL would take more, and both builds accept the same keys.

use std::fmt;

use base64ct::{Base64, Encoding};
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockCipherDecrypt, BlockModeDecrypt, KeyInit, KeyIvInit};
use md5::{Digest, Md5};
use pkcs8::der::asn1::AnyRef;
use pkcs8::der::oid::ObjectIdentifier;
use pkcs8::der::pem as pem_rfc7468;
use pkcs8::der::{Decode, SliceReader, Tag, Tagged};
use pkcs8::pkcs5;
use pkcs8::spki::AlgorithmIdentifierRef;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

/// How a private key's bytes are laid out (the PEM label says which).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFormat {
  /// `PRIVATE KEY`
  Pkcs8,
  /// `RSA PRIVATE KEY`
  Pkcs1,
  /// `EC PRIVATE KEY`
  Sec1,
}

impl KeyFormat {
  fn pem_label(self) -> &'static str {
    match self {
      KeyFormat::Pkcs8 => "PRIVATE KEY",
      KeyFormat::Pkcs1 => "RSA PRIVATE KEY",
      KeyFormat::Sec1 => "EC PRIVATE KEY",
    }
  }
}

/// A client certificate chain and its (decrypted) private key. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCert {
  /// DER certificates: the client's own first, then any intermediates it sends along.
  chain: Vec<Vec<u8>>,
  key_format: KeyFormat,
  /// The clear key, DER.
  key: Vec<u8>,
}

impl fmt::Debug for ClientCert {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(f, "ClientCert {{ certificates: {}, key: *** }}", self.chain.len())
  }
}

/// PEM text and what to call it in messages (`sslkey /etc/app/client.key`, `ssl.key`).
pub struct Source<'a> {
  pub name: &'a str,
  pub pem: &'a [u8],
}

impl ClientCert {
  /// Reads the certificate chain and the key, decrypting the key with `passphrase` if it is
  /// encrypted. The error is a message that names the source, never the passphrase or the key.
  pub fn load(cert: Source<'_>, key: Source<'_>, passphrase: Option<&str>) -> Result<ClientCert, String> {
    let chain = certificates(&cert)?;
    let (key_format, key_der) = private_key(&key, passphrase)?;
    check_algorithm(&key, key_format, &key_der)?;
    Ok(ClientCert { chain, key_format, key: key_der })
  }

  pub fn chain(&self) -> &[Vec<u8>] {
    &self.chain
  }

  pub fn key_format(&self) -> KeyFormat {
    self.key_format
  }

  pub fn key_der(&self) -> &[u8] {
    &self.key
  }

  /// The chain as PEM (for node:tls in the WebAssembly build).
  pub fn chain_pem(&self) -> String {
    self.chain.iter().map(|der| pem("CERTIFICATE", der)).collect()
  }

  /// The clear key as PEM (for node:tls in the WebAssembly build).
  pub fn key_pem(&self) -> String {
    pem(self.key_format.pem_label(), &self.key)
  }
}

fn pem(label: &str, der: &[u8]) -> String {
  // Encoding a DER blob we hold cannot fail (the label is ours, the output a String).
  pem_rfc7468::encode_string(label, pem_rfc7468::LineEnding::LF, der).unwrap_or_default()
}

fn certificates(cert: &Source<'_>) -> Result<Vec<Vec<u8>>, String> {
  let mut chain = Vec::new();
  for der in CertificateDer::pem_slice_iter(cert.pem) {
    let der = der.map_err(|e| format!("{} cannot be read as PEM certificates: {e:?}", cert.name))?;
    chain.push(der.as_ref().to_vec());
  }
  if chain.is_empty() {
    return Err(format!("{} holds no certificate (PEM \"BEGIN CERTIFICATE\")", cert.name));
  }
  Ok(chain)
}

/// One PEM block: its label and its text from BEGIN to END.
struct Block<'a> {
  label: &'a str,
  text: &'a str,
}

/// The PEM blocks of `text`, in order. Text around them (`openssl` prints a readable form
/// before a certificate with `-text`) is skipped, as OpenSSL skips it.
fn blocks(text: &str) -> Vec<Block<'_>> {
  let mut out = Vec::new();
  let mut rest = text;
  while let Some(start) = rest.find("-----BEGIN ") {
    let after = &rest[start + 11..];
    let Some(label_end) = after.find("-----") else { break };
    let label = &after[..label_end];
    let end_line = format!("-----END {label}-----");
    let Some(end) = rest[start..].find(&end_line) else { break };
    let stop = start + end + end_line.len();
    out.push(Block { label, text: &rest[start..stop] });
    rest = &rest[stop..];
  }
  out
}

const SUPPORTED_KEYS: &str =
  "PEM \"PRIVATE KEY\", \"RSA PRIVATE KEY\", \"EC PRIVATE KEY\" or \"ENCRYPTED PRIVATE KEY\"";

/// The key's format and clear DER bytes.
fn private_key(key: &Source<'_>, passphrase: Option<&str>) -> Result<(KeyFormat, Vec<u8>), String> {
  let name = key.name;
  let text =
    std::str::from_utf8(key.pem).map_err(|_| format!("{name} is not PEM text ({SUPPORTED_KEYS})"))?;
  let block = blocks(text)
    .into_iter()
    .find(|b| b.label.ends_with("PRIVATE KEY"))
    .ok_or_else(|| format!("{name} holds no private key ({SUPPORTED_KEYS})"))?;
  let format = match block.label {
    "PRIVATE KEY" | "ENCRYPTED PRIVATE KEY" => KeyFormat::Pkcs8,
    "RSA PRIVATE KEY" => KeyFormat::Pkcs1,
    "EC PRIVATE KEY" => KeyFormat::Sec1,
    other => {
      return Err(format!("{name} holds a \"{other}\", which onepool does not read ({SUPPORTED_KEYS})"))
    }
  };
  let needs_passphrase = || {
    format!(
      "{name} is encrypted: give its passphrase as sslpassword in the connection string or ssl.passphrase"
    )
  };
  if block.text.contains("Proc-Type:") {
    let passphrase = passphrase.ok_or_else(needs_passphrase)?;
    return Ok((format, decrypt_traditional(name, block.text, passphrase)?));
  }
  let (_, der) = pem_rfc7468::decode_vec(block.text.as_bytes())
    .map_err(|e| format!("{name} cannot be read as PEM: {e}"))?;
  if block.label != "ENCRYPTED PRIVATE KEY" {
    return Ok((format, der));
  }
  let passphrase = passphrase.ok_or_else(needs_passphrase)?;
  let encrypted =
    pkcs8::EncryptedPrivateKeyInfoRef::from_der(&der).map_err(|e| match encryption_oid(&der) {
      // pkcs5 reads PBES1 and PBES2 only: PKCS#12's schemes (`openssl pkcs8 -v1 PBE-SHA1-3DES`)
      // fail as unreadable parameters.
      Some(oid) => reencrypt(name, &format!("an algorithm onepool does not decrypt ({oid})")),
      None => format!("{name} is not a valid encrypted PKCS#8 key: {e}"),
    })?;
  let clear = encrypted.decrypt(passphrase.as_bytes()).map_err(|e| match e {
    pkcs8::Error::EncryptedPrivateKey(pkcs5::Error::DecryptFailed) => wrong_passphrase(name),
    pkcs8::Error::EncryptedPrivateKey(pkcs5::Error::NoPbes1CryptSupport) => {
      reencrypt(name, "PBES1 (openssl pkcs8 -v1), which onepool does not decrypt")
    }
    pkcs8::Error::EncryptedPrivateKey(pkcs5::Error::UnsupportedAlgorithm { oid }) => {
      reencrypt(name, &format!("an algorithm onepool does not decrypt ({oid})"))
    }
    other => format!("{name} could not be decrypted: {other}"),
  })?;
  let clear = clear.as_bytes().to_vec();
  // CBC padding checks catch most wrong passphrases; the rest decrypt to bytes that are no key.
  if pkcs8::PrivateKeyInfoRef::from_der(&clear).is_err() {
    return Err(wrong_passphrase(name));
  }
  Ok((format, clear))
}

fn reencrypt(name: &str, scheme: &str) -> String {
  format!(
    "{name} is encrypted with {scheme}: re-encrypt it with `openssl pkcs8 -topk8 -v2 aes-256-cbc -in <key> \
     -out <new key>`"
  )
}

/// The encryption algorithm named by an EncryptedPrivateKeyInfo whose parameters pkcs5 cannot read.
fn encryption_oid(der: &[u8]) -> Option<ObjectIdentifier> {
  let info = AnyRef::from_der(der).ok()?;
  let mut fields = SliceReader::new(info.value()).ok()?;
  Some(AlgorithmIdentifierRef::decode(&mut fields).ok()?.oid)
}

fn wrong_passphrase(name: &str) -> String {
  format!("{name} could not be decrypted: wrong passphrase (sslpassword / ssl.passphrase)")
}

/// OpenSSL's traditional PEM encryption: `Proc-Type: 4,ENCRYPTED` and
/// `DEK-Info: <cipher>,<IV in hex>` headers, the key encrypted with a key derived from the
/// passphrase and the IV's first 8 bytes (EVP_BytesToKey, MD5, one round).
fn decrypt_traditional(name: &str, block: &str, passphrase: &str) -> Result<Vec<u8>, String> {
  let malformed = |what: &str| format!("{name} is not valid encrypted PEM: {what}");
  let mut dek_info = None;
  let mut body = String::new();
  // Between the BEGIN and END lines: headers, a blank line, base64.
  for line in block.lines().skip(1) {
    let line = line.trim();
    if line.starts_with("-----END ") {
      break;
    }
    if let Some((header, value)) = line.split_once(':') {
      if header.trim() == "DEK-Info" {
        dek_info = Some(value.trim());
      }
    } else {
      body.push_str(line);
    }
  }
  let (cipher, iv) =
    dek_info.and_then(|v| v.split_once(',')).ok_or_else(|| malformed("no DEK-Info header"))?;
  let iv = hex(iv.trim()).ok_or_else(|| malformed("the DEK-Info IV is not hexadecimal"))?;
  let ciphertext = Base64::decode_vec(&body).map_err(|_| malformed("the body is not base64"))?;
  let key_len = match cipher {
    "AES-128-CBC" => 16,
    "AES-192-CBC" | "DES-EDE3-CBC" => 24,
    "AES-256-CBC" => 32,
    other => {
      return Err(reencrypt(
        name,
        &format!("{other}, which onepool does not decrypt (AES-128/192/256-CBC and DES-EDE3-CBC it does)"),
      ))
    }
  };
  if iv.len() < 8 {
    return Err(malformed("the DEK-Info IV is too short"));
  }
  let key = bytes_to_key(passphrase.as_bytes(), &iv[..8], key_len);
  let clear = match cipher {
    "AES-128-CBC" => cbc_decrypt::<aes::Aes128>(&key, &iv, &ciphertext),
    "AES-192-CBC" => cbc_decrypt::<aes::Aes192>(&key, &iv, &ciphertext),
    "AES-256-CBC" => cbc_decrypt::<aes::Aes256>(&key, &iv, &ciphertext),
    _ => cbc_decrypt::<des::TdesEde3>(&key, &iv, &ciphertext),
  }
  .ok_or_else(|| wrong_passphrase(name))?;
  // Likewise: a wrong passphrase whose padding happened to check out gives no DER key.
  if !is_der_sequence(&clear) {
    return Err(wrong_passphrase(name));
  }
  Ok(clear)
}

fn cbc_decrypt<C>(key: &[u8], iv: &[u8], ciphertext: &[u8]) -> Option<Vec<u8>>
where
  C: BlockCipherDecrypt + KeyInit,
{
  cbc::Decryptor::<C>::new_from_slices(key, iv).ok()?.decrypt_padded_vec::<Pkcs7>(ciphertext).ok()
}

/// OpenSSL's EVP_BytesToKey with MD5 and one round, key bytes only:
/// D_1 = MD5(passphrase ‖ salt), D_i = MD5(D_(i-1) ‖ passphrase ‖ salt), key = D_1 ‖ D_2 ‖ ...
fn bytes_to_key(passphrase: &[u8], salt: &[u8], len: usize) -> Vec<u8> {
  let mut key = Vec::with_capacity(len + 16);
  let mut previous: Vec<u8> = Vec::new();
  while key.len() < len {
    let mut md5 = Md5::new();
    md5.update(&previous);
    md5.update(passphrase);
    md5.update(salt);
    previous = md5.finalize().to_vec();
    key.extend_from_slice(&previous);
  }
  key.truncate(len);
  key
}

fn hex(text: &str) -> Option<Vec<u8>> {
  if !text.len().is_multiple_of(2) {
    return None;
  }
  (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

fn is_der_sequence(der: &[u8]) -> bool {
  AnyRef::from_der(der).is_ok_and(|any| any.tag() == Tag::Sequence)
}

const RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");

/// The key must be one rustls (ring) signs with: RSA, ECDSA on P-256 or P-384, Ed25519.
fn check_algorithm(key: &Source<'_>, format: KeyFormat, der: &[u8]) -> Result<(), String> {
  let name = key.name;
  let invalid = || format!("{name} holds a malformed {} key", format.pem_label());
  let unsupported = |what: String| {
    format!("{name} is {what}, which onepool cannot sign with: use an RSA, ECDSA P-256/P-384 or Ed25519 key")
  };
  let curve_ok = |curve: Option<ObjectIdentifier>| match curve {
    Some(c) if c == P256 || c == P384 => Ok(()),
    Some(c) => Err(unsupported(format!("an EC key on curve {c}"))),
    None => Err(unsupported("an EC key that does not name its curve".into())),
  };
  match format {
    KeyFormat::Pkcs1 => pkcs1::RsaPrivateKeyRef::from_der(der).map(|_| ()).map_err(|_| invalid()),
    KeyFormat::Sec1 => {
      let ec = sec1::EcPrivateKey::from_der(der).map_err(|_| invalid())?;
      curve_ok(ec.parameters.and_then(|p| p.named_curve()))
    }
    KeyFormat::Pkcs8 => {
      let info = pkcs8::PrivateKeyInfoRef::from_der(der).map_err(|_| invalid())?;
      let algorithm = info.algorithm.oid;
      if algorithm == RSA || algorithm == ED25519 {
        Ok(())
      } else if algorithm == EC {
        curve_ok(info.algorithm.parameters.and_then(|p| p.decode_as::<ObjectIdentifier>().ok()))
      } else {
        Err(unsupported(format!("a key of algorithm {algorithm}")))
      }
    }
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn bytes_to_key_is_openssls_derivation() {
    let key = bytes_to_key(b"password", b"saltsalt", 32);
    // evpkdf's documented vector for MD5, one round, 32 key bytes.
    assert_eq!(hex("fdbdf3419fff98bdb0241390f62a9db35f4aba29d77566377997314ebfc709f2").unwrap(), key);
  }

  #[test]
  fn blocks_are_found_among_other_text() {
    let text =
      "Bag Attributes\n-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n\
                -----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
    let found: Vec<_> = blocks(text).iter().map(|b| b.label).collect();
    assert_eq!(found, ["EC PARAMETERS", "EC PRIVATE KEY"]);
  }

  #[test]
  fn a_key_file_without_a_key_says_what_it_expects() {
    let err = private_key(&Source { name: "sslkey /k", pem: b"not a key" }, None).unwrap_err();
    assert!(err.starts_with("sslkey /k holds no private key"), "{err}");
  }

  #[test]
  fn hex_reads_pairs() {
    assert_eq!(hex("0aFF"), Some(vec![10, 255]));
    assert_eq!(hex("0a0"), None);
    assert_eq!(hex("zz"), None);
  }
}
