'use strict'
// Starts a real PgBouncer in transaction mode in front of a Postgres server, on a free loopback
// port. `npm test` installs PgBouncer where it can, or stops and says how (scripts/prerequisites.js,
// which also finds it: ONEPOOL_PGBOUNCER names the binary).

const { spawn, execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const net = require('node:net')
const { freePort } = require('../../scripts/embedded-server')
const { findPgbouncer } = require('../../scripts/prerequisites')

function waitForPort(port, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const s = net.connect(port, '127.0.0.1')
      s.once('connect', () => {
        s.destroy()
        resolve()
      })
      s.once('error', () => {
        s.destroy()
        if (Date.now() > deadline) reject(new Error(`pgbouncer did not listen on ${port}`))
        else setTimeout(attempt, 50)
      })
    }
    attempt()
  })
}

async function startPgbouncer({ serverPort, user, password, poolSize = 3 }) {
  const bin = findPgbouncer()
  if (!bin) throw new Error('pgbouncer was not found: `npm test` installs it (or says how), or set ONEPOOL_PGBOUNCER')
  const port = await freePort()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'onepool-pgbouncer-'))
  fs.chmodSync(dir, 0o777)
  const conf = path.join(dir, 'pgbouncer.ini')
  fs.writeFileSync(path.join(dir, 'userlist.txt'), `"${user}" "${password}"\n`)
  fs.writeFileSync(
    conf,
    [
      '[databases]',
      `* = host=127.0.0.1 port=${serverPort}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = scram-sha-256',
      `auth_file = ${path.join(dir, 'userlist.txt')}`,
      'pool_mode = transaction',
      `default_pool_size = ${poolSize}`,
      'max_client_conn = 500',
      `logfile = ${path.join(dir, 'pgbouncer.log')}`,
      `pidfile = ${path.join(dir, 'pgbouncer.pid')}`,
      '',
    ].join('\n'),
  )
  for (const f of fs.readdirSync(dir)) fs.chmodSync(path.join(dir, f), 0o644)
  const asRoot = process.getuid && process.getuid() === 0
  const args = asRoot ? ['-u', 'postgres', conf] : [conf]
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d) => (stderr += d))
  try {
    await waitForPort(port)
  } catch (e) {
    child.kill('SIGKILL')
    throw new Error(`${e.message}: ${stderr}`)
  }
  const version = execFileSync(bin, ['--version']).toString().split('\n')[0]
  return {
    port,
    version,
    url: (database = 'postgres') => `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`,
    async stop() {
      child.kill('SIGTERM')
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)))
      fs.rmSync(dir, { recursive: true, force: true })
    },
  }
}

module.exports = { startPgbouncer }
