'use strict'
// Certificates for the TLS tests, made with the openssl CLI: a throwaway certificate authority
// with a server certificate for `localhost` only (no IP address), the PostgreSQL docs'
// self-signed server certificate, which is its own root, server certificates signed with other
// hashes and keys, and client certificates with their keys in the forms libpq reads.

const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const ssl = (...args) => execFileSync('openssl', args, { stdio: 'pipe' })

function tempDir() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'onepool-certs-'))
  fs.chmodSync(dir, 0o755)
  return { dir, f: (name) => path.join(dir, name), cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) }
}

/** Postgres wants its key private to the user it runs as (`postgres` when we are root). */
function serverOwns(cert, key) {
  if (process.getuid && process.getuid() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString())
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString())
    fs.chownSync(key, uid, gid)
    fs.chownSync(cert, uid, gid)
  }
  fs.chmodSync(key, 0o600)
}

/** `subjectAltName: false` leaves the host name in the common name only (as libpq still reads it). */
function makeCerts({ subjectAltName = true } = {}) {
  const { dir, f, cleanup } = tempDir()
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=onepool test CA', '-keyout', f('ca.key'), '-out', f('ca.crt'),
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign')
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', f('server.key'), '-out', f('server.csr'))
  fs.writeFileSync(f('ext.cnf'), `${subjectAltName ? 'subjectAltName=DNS:localhost\n' : ''}basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n`)
  ssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-out', f('server.crt'), '-extfile', f('ext.cnf'))
  serverOwns(f('server.crt'), f('server.key'))
  return { dir, ca: f('ca.crt'), cert: f('server.crt'), key: f('server.key'), cleanup }
}

/**
 * The PostgreSQL docs' "self-signed certificate" recipe, verbatim but for the common name:
 * `openssl req -new -x509 -days 365 -nodes -text -out server.crt -keyout server.key -subj "/CN=…"`.
 * OpenSSL's default configuration makes it a CA certificate (basicConstraints CA:TRUE) without a
 * subjectAltName; clients trust it with `sslrootcert=server.crt`.
 *
 * `expired: true` makes the same kind of certificate valid only on 1-2 January 2020 (`openssl req`
 * cannot date a certificate in the past; `openssl ca -selfsign` can).
 */
function makeSelfSigned({ cn = 'localhost', expired = false } = {}) {
  const { dir, f, cleanup } = tempDir()
  if (!expired) {
    ssl('req', '-new', '-x509', '-days', '365', '-nodes', '-text', '-out', f('server.crt'), '-keyout', f('server.key'), '-subj', `/CN=${cn}`)
  } else {
    fs.writeFileSync(f('index.txt'), '')
    fs.writeFileSync(f('ca.cnf'), [
      '[ca]', 'default_ca = selfsigned',
      '[selfsigned]', `database = ${f('index.txt')}`, `new_certs_dir = ${dir}`, 'rand_serial = yes', 'default_md = sha256', 'policy = any', 'x509_extensions = v3_ca',
      '[any]', 'commonName = supplied',
      // What `openssl req -x509` adds with OpenSSL's default configuration.
      '[v3_ca]', 'basicConstraints = critical,CA:TRUE', 'subjectKeyIdentifier = hash', 'authorityKeyIdentifier = keyid:always,issuer',
      '',
    ].join('\n'))
    ssl('req', '-new', '-nodes', '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', `/CN=${cn}`)
    ssl('ca', '-batch', '-config', f('ca.cnf'), '-selfsign', '-keyfile', f('server.key'), '-in', f('server.csr'),
      '-startdate', '20200101000000Z', '-enddate', '20200102000000Z', '-out', f('server.crt'))
  }
  serverOwns(f('server.crt'), f('server.key'))
  return { dir, cert: f('server.crt'), key: f('server.key'), cleanup }
}

/** `openssl genpkey` arguments for a key of `algorithm`: RSA, EC:P-256, EC:P-384, EC:P-521, ED25519. */
function genpkeyArgs(algorithm) {
  if (algorithm === 'RSA') return ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048']
  if (algorithm.startsWith('EC:')) return ['-algorithm', 'EC', '-pkeyopt', `ec_paramgen_curve:${algorithm.slice(3)}`]
  return ['-algorithm', algorithm]
}

/**
 * A throwaway CA for client certificates, as a server's `ssl_ca_file` trusts them.
 * `issue({ cn, algorithm })` makes a client certificate for `cn` (a database user, for `cert`
 * authentication) with a fresh clear PKCS#8 key; `days: -1` makes one that has expired.
 */
function makeClientCa(name = 'onepool test client CA') {
  const { dir, f, cleanup } = tempDir()
  const ca = { dir, cert: f('ca.crt'), key: f('ca.key'), cleanup }
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${name}`, '-keyout', ca.key, '-out', ca.cert,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign')
  fs.writeFileSync(f('client.cnf'), 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n')
  let serial = 0
  ca.issue = ({ cn, algorithm = 'RSA' } = {}) => {
    const base = f(`client-${++serial}`)
    ssl('genpkey', ...genpkeyArgs(algorithm), '-out', `${base}.key`)
    ssl('req', '-new', '-key', `${base}.key`, '-subj', `/CN=${cn}`, '-out', `${base}.csr`)
    ssl('x509', '-req', '-in', `${base}.csr`, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-days', '2', '-out', `${base}.crt`, '-extfile', f('client.cnf'))
    return { cert: `${base}.crt`, key: `${base}.key` }
  }
  return ca
}

/**
 * `key` (a clear PKCS#8 file) re-written in another of the forms libpq reads, next to it:
 * pkcs1 / sec1 (clear, traditional), pkcs8-aes256 / pkcs8-scrypt / pkcs8-des3 / pkcs12-pbe
 * (encrypted PKCS#8), traditional-aes256 / traditional-aes128 / traditional-des3 (OpenSSL's
 * `Proc-Type: 4,ENCRYPTED` PEM, RSA or EC as the key is).
 */
function convertKey(key, form, passphrase) {
  const out = `${key}.${form}.pem`
  const pass = ['-passout', `pass:${passphrase}`]
  const pkcs8 = (...how) => ssl('pkcs8', '-topk8', ...how, '-in', key, ...pass, '-out', out)
  const traditional = (cipher) => {
    const type = /modulus/i.test(ssl('pkey', '-in', key, '-noout', '-text').toString()) ? 'rsa' : 'ec'
    ssl(type, '-in', key, ...(type === 'rsa' ? ['-traditional'] : []), ...(cipher ? [`-${cipher}`, ...pass] : []), '-out', out)
  }
  switch (form) {
    case 'pkcs1':
    case 'sec1':
      traditional(null)
      break
    case 'pkcs8-aes256':
      pkcs8('-v2', 'aes-256-cbc')
      break
    case 'pkcs8-scrypt':
      pkcs8('-scrypt')
      break
    case 'pkcs8-des3':
      pkcs8('-v2', 'des3', '-v2prf', 'hmacWithSHA1')
      break
    case 'pkcs12-pbe':
      pkcs8('-v1', 'PBE-SHA1-3DES')
      break
    case 'traditional-aes256':
      traditional('aes256')
      break
    case 'traditional-aes128':
      traditional('aes128')
      break
    case 'traditional-des3':
      traditional('des3')
      break
    default:
      throw new Error(`convertKey: unknown form ${form}`)
  }
  return out
}

/**
 * A self-signed server certificate for `localhost` whose signature uses `digest` (sha1, sha256,
 * sha384, sha512) with a key of `algorithm` (see genpkeyArgs), RSASSA-PSS with `pss: true`; Ed25519
 * signs without a separate digest. For the hash of SCRAM channel binding, which follows the
 * certificate's signature algorithm.
 */
function makeServerCert({ algorithm = 'RSA', digest = 'sha256', pss = false } = {}) {
  const { dir, f, cleanup } = tempDir()
  ssl('genpkey', ...genpkeyArgs(algorithm), '-out', f('server.key'))
  const signing = algorithm === 'ED25519' ? [] : [`-${digest}`, ...(pss ? ['-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:digest'] : [])]
  ssl('req', '-new', '-x509', '-key', f('server.key'), '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost', ...signing, '-out', f('server.crt'))
  serverOwns(f('server.crt'), f('server.key'))
  return { dir, cert: f('server.crt'), key: f('server.key'), cleanup }
}

/**
 * Makes `server` (scripts/embedded-server.js) present `certs` to new connections: ALTER SYSTEM
 * and a configuration reload, no restart. Resolves once a new backend shows the new file.
 */
async function serveCertificate(server, certs) {
  const pg = require('pg')
  const admin = new pg.Client({ connectionString: server.superuserUrl })
  await admin.connect()
  try {
    await admin.query(`alter system set ssl_cert_file = ${admin.escapeLiteral(certs.cert)}`)
    await admin.query(`alter system set ssl_key_file = ${admin.escapeLiteral(certs.key)}`)
    await admin.query('alter system set ssl = on')
    await admin.query('select pg_reload_conf()')
  } finally {
    await admin.end()
  }
  // The postmaster reloads when it gets to it; a new backend shows what it took over.
  for (let attempt = 0; attempt < 100; attempt++) {
    const probe = new pg.Client({ connectionString: server.superuserUrl })
    await probe.connect()
    try {
      if ((await probe.query('show ssl_cert_file')).rows[0].ssl_cert_file === certs.cert) return
    } finally {
      await probe.end()
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`the server did not take up ${certs.cert}`)
}

module.exports = { makeCerts, makeSelfSigned, makeClientCa, convertKey, makeServerCert, serveCertificate }
