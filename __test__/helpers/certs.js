'use strict'
// A throwaway certificate authority and a server certificate for `localhost` only (no IP SAN),
// made with the openssl CLI, for the TLS tests.

const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

function makeCerts() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'onepool-certs-'))
  fs.chmodSync(dir, 0o755)
  const f = (name) => path.join(dir, name)
  const ssl = (...args) => execFileSync('openssl', args, { stdio: 'pipe' })
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=onepool test CA', '-keyout', f('ca.key'), '-out', f('ca.crt'),
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign')
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', f('server.key'), '-out', f('server.csr'))
  fs.writeFileSync(f('ext.cnf'), 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n')
  ssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-out', f('server.crt'), '-extfile', f('ext.cnf'))
  // Postgres wants its key private to the user it runs as (`postgres` when we are root).
  if (process.getuid && process.getuid() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString())
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString())
    fs.chownSync(f('server.key'), uid, gid)
    fs.chownSync(f('server.crt'), uid, gid)
  }
  fs.chmodSync(f('server.key'), 0o600)
  return { dir, ca: f('ca.crt'), cert: f('server.crt'), key: f('server.key'), cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) }
}

module.exports = { makeCerts }
