'use strict'
// Certificates for the TLS tests, made with the openssl CLI: a throwaway certificate authority
// with a server certificate for `localhost` only (no IP address), and the PostgreSQL docs'
// self-signed server certificate, which is its own root.

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

module.exports = { makeCerts, makeSelfSigned }
