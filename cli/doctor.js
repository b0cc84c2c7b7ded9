'use strict'
// `onepool doctor`: who holds connections on the database, next to the role's and the server's
// limits, and what is wrong (orphaned onepool connections, sessions idle in transaction, limits
// nearly reached). It connects with onepool itself, with one connection, and ends it when done.
//
// `--json` prints one document (durations in seconds, null when unknown; "used" never counts
// the doctor's own connection):
// {
//   onepoolDoctor: 1,                     // format version
//   checkedAt: "2026-01-01T12:00:00Z",    // server time (UTC)
//   target: "user@host:port/db", database, host: "<this machine's tag host>",
//   doctor: { pid, backendPid, clientAddr },
//   thresholds: { idleInTransactionSeconds, nearLimitPercent: 80 },
//   role:   { name, superuser, used, limit /* null: none applies */, configuredLimit, percent },
//   server: { version, used, limit /* max_connections minus reserved */, maxConnections,
//             superuserReservedConnections, reservedConnections, percent, standby /* in recovery */ },
//   groups: [{ application, clientAddr, owner /* "pid@host" | null */, ownerStatus, state
//              /* pg_stat_activity.state, or "hidden" */, orphaned, count, longestSeconds, backendPids }],
//   connections: [{ backendPid, user, database, applicationName /* as sent */, application
//              /* tag stripped */, clientAddr /* null: unix socket or hidden */, clientPort, state,
//              stateSeconds, transactionSeconds, backendStart, waitEvent, visible, onepool,
//              owner: { pid, host, tag, status: "alive" | "gone" | "other-host" | "unknown" } | null,
//              idleInTransaction, orphaned, orphanVeto /* why a "gone" owner is not proof */ }],
//   problems: [{ kind: "orphaned" | "idle-in-transaction" | "role-near-limit" | "server-near-limit",
//                message, ...kind-specific fields (backendPid, owner, seconds, used, limit, ...) }],
//   notes: [string],
//   killOrphans: boolean,
//   terminated: [{ backendPid, application, owner, result: "terminated" | "not-terminated" |
//                  "already-gone" | "skipped" | "failed", error? }],
//   exitCode: 0 | 1
// }
// On a usage or connection error (exit 2) it prints { error: { code, causeCode?, message, stage } }.
//
// A multi-host target (`postgres://u@h1:5432,h2:5433/db`, `?host=h1,h2`) is examined one server
// at a time: { onepoolDoctor: 1, target, hosts: [{ endpoint: "h1:5432", ...the document above,
// or error: { code, causeCode?, message, stage } }], exitCode } — 2 when no server could be
// reached, 1 when one could not or one has problems, else 0.

const { parseArgs } = require('node:util')
const { analyze, NEAR_LIMIT } = require('./analyze')
const system = require('./system')
const { renderText, renderTerminated } = require('./report')
const { cut } = require('./format')
const { splitHosts } = require('./hosts')

const HELP = `Usage: onepool doctor [options]

Shows who holds connections on a Postgres server (grouped by application,
client address, owning process and state) next to the role's and the
server's connection limits, and points out problems:
  - orphaned onepool connections: tagged with this host, owner process gone
  - sessions idle in transaction
  - the role or the server at or above ${Math.round(NEAR_LIMIT * 100)}% of its connection limit

A multi-host URL (postgres://u@h1,h2/db) is checked one server at a time.

Options:
  --url <url>          database to check (default: $DATABASE_URL); prefer the
                       variable, a URL on the command line is visible to ps
  --kill-orphans       terminate the orphaned onepool connections (and no others)
  --idle-tx <seconds>  report sessions idle in transaction for at least this
                       long (default 5; 0 reports every one)
  --json               print one JSON document instead of the text report
  -h, --help           show this help

Exit status: 0 no problems, 1 problems found, 2 usage or connection error.
Connect as a superuser (or a member of pg_read_all_stats) to see every session;
other roles' sessions are partly hidden from ordinary roles.`

class UsageError extends Error {}

function parse(argv) {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        url: { type: 'string' },
        'kill-orphans': { type: 'boolean' },
        'idle-tx': { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: false,
      strict: true,
    })
  } catch (e) {
    throw new UsageError(e.message)
  }
  const v = parsed.values
  let idleTx = 5
  if (v['idle-tx'] !== undefined) {
    idleTx = Number(v['idle-tx'])
    if (v['idle-tx'].trim() === '' || !Number.isFinite(idleTx) || idleTx < 0) {
      throw new UsageError(`--idle-tx takes a number of seconds (0 or more), got ${JSON.stringify(v['idle-tx'])}`)
    }
  }
  return { url: v.url, killOrphans: !!v['kill-orphans'], idleTx, json: !!v.json, help: !!v.help }
}

const INFO_SQL = `select current_user as role,
       current_database() as database,
       pg_backend_pid() as self_pid,
       host(inet_client_addr()) as self_addr,
       inet_server_port() as server_port,
       to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') as now,
       current_setting('server_version') as server_version,
       current_setting('server_version_num')::int as server_version_num,
       current_setting('max_connections')::int as max_connections,
       current_setting('superuser_reserved_connections')::int as superuser_reserved,
       coalesce(current_setting('reserved_connections', true), '0')::int as reserved,
       (select rolconnlimit from pg_roles where rolname = current_user) as role_conn_limit,
       (select rolsuper from pg_roles where rolname = current_user) as role_superuser,
       pg_is_in_recovery() as standby`

// Client backends. Durations are null when the time is unknown (greatest() alone would turn a
// null into 0). Sessions of other roles show no backend_type to an ordinary role: those with a
// database and a user are counted as clients too (background processes have neither).
const ACTIVITY_SQL = `select pid, usename, datname, application_name,
       host(client_addr) as client_addr, client_port, backend_type, state,
       case when state_change is not null then round(greatest(0, extract(epoch from clock_timestamp() - state_change)), 3)::float8 end as state_seconds,
       case when xact_start is not null then round(greatest(0, extract(epoch from clock_timestamp() - xact_start)), 3)::float8 end as xact_seconds,
       backend_start::text as backend_start, wait_event_type, wait_event
  from pg_stat_activity
 where pid <> pg_backend_pid()
   and (backend_type = 'client backend' or (backend_type is null and datname is not null and usename is not null))
 order by pid`

/** Reads everything in one round trip (one statement snapshot of pg_stat_activity). */
async function snapshot(pool) {
  const [info, activity] = await pool.query(`${INFO_SQL}; ${ACTIVITY_SQL}`)
  const i = info.rows[0]
  return {
    info: {
      role: i.role,
      database: i.database,
      selfPid: i.self_pid,
      selfAddr: i.self_addr,
      serverPort: i.server_port,
      now: i.now,
      serverVersion: i.server_version,
      serverVersionNum: i.server_version_num,
      maxConnections: i.max_connections,
      superuserReserved: i.superuser_reserved,
      reserved: i.reserved,
      roleConnLimit: i.role_conn_limit,
      roleSuperuser: i.role_superuser,
      standby: i.standby,
    },
    rows: activity.rows,
  }
}

/**
 * Terminates the orphaned backends of `report`, each only if it is still the same backend (pid,
 * application_name and start time) and its owner process still does not exist.
 */
async function killOrphans(pool, report, info, processExists) {
  const withTimeout = info.serverVersionNum >= 140000
  const sql =
    `select pg_terminate_backend(pid${withTimeout ? ', 5000' : ''}) as ok from pg_stat_activity ` +
    'where pid = $1 and application_name = $2 and backend_start = $3::timestamptz and pid <> pg_backend_pid()'
  const out = []
  for (const c of report.connections) {
    if (!c.orphaned) continue
    const entry = { backendPid: c.backendPid, application: c.application, owner: c.owner.tag, result: null }
    if (processExists(c.owner.pid) !== false) {
      entry.result = 'skipped'
      entry.error = `process ${c.owner.tag} exists again`
    } else {
      try {
        const r = await pool.query(sql, [c.backendPid, c.applicationName, c.backendStart])
        entry.result = r.rows.length === 0 ? 'already-gone' : r.rows[0].ok ? 'terminated' : 'not-terminated'
      } catch (e) {
        entry.result = 'failed'
        entry.error = `${e.message} [${e.code}]`
      }
    }
    out.push(entry)
  }
  return out
}

function describeError(err) {
  if (!err || typeof err !== 'object') return String(err)
  const code = err.code ? ` [${err.code}]` : ''
  let text = `${err.message}${code}`
  const cause = err.cause && err.cause.code
  if (cause === '53300') {
    text +=
      '\nThe role or the server has no connection left, which is likely the problem to diagnose: ' +
      'run the doctor as a superuser (superuser_reserved_connections keeps slots for it) to see who holds them.'
  }
  return text
}

/**
 * Runs the command. Returns the exit status; never calls process.exit (output is flushed first).
 * @param {string[]} argv the arguments after "doctor"
 */
async function run(argv, io = {}) {
  const env = io.env || process.env
  const stdout = io.stdout || process.stdout
  const stderr = io.stderr || process.stderr
  const columns = io.columns || (stdout.isTTY && stdout.columns) || 80

  let opts
  try {
    opts = parse(argv)
  } catch (e) {
    if (!(e instanceof UsageError)) throw e
    stderr.write(`onepool doctor: ${e.message}\nRun "onepool doctor --help" for usage.\n`)
    return 2
  }
  if (opts.help) {
    stdout.write(HELP + '\n')
    return 0
  }
  const url = opts.url ?? env.DATABASE_URL
  if (!url) {
    stderr.write('onepool doctor: no database to check: set DATABASE_URL or pass --url <url>\n')
    return 2
  }

  const errorOf = (err, stage) => {
    const error = { code: (err && err.code) || null, message: err && err.message, stage }
    if (err && err.cause && err.cause.code) error.causeCode = err.cause.code
    return error
  }
  const fail = (err, stage) => {
    if (opts.json) stdout.write(JSON.stringify({ error: errorOf(err, stage) }, null, 2) + '\n')
    stderr.write(`onepool doctor: ${describeError(err)}\n`)
    return 2
  }

  const { createPool } = require('..')
  // A multi-host target: each server is examined on its own (its own connections and limits).
  const servers = splitHosts(url)
  if (!servers) {
    const one = await examine(createPool, url, opts)
    if (one.error) return fail(one.error, one.stage)
    if (opts.json) {
      stdout.write(JSON.stringify(one.doc, null, 2) + '\n')
    } else {
      stdout.write(renderText(one.doc, { width: columns }))
      if (opts.killOrphans) stdout.write(renderTerminated(one.doc, { width: columns }))
    }
    return one.doc.exitCode
  }
  let target
  try {
    const all = createPool({ connectionString: url, name: 'onepool-doctor-target', max: 1 })
    target = all.stats().target
    await all.end({ timeoutMs: 1000 }).catch(() => {})
  } catch (e) {
    return fail(e, 'config')
  }
  const hosts = []
  for (const server of servers) {
    const one = await examine(createPool, server.url, opts)
    hosts.push(one.error ? { endpoint: server.endpoint, error: errorOf(one.error, one.stage) } : { endpoint: server.endpoint, ...one.doc })
    if (!opts.json) {
      const what = one.error ? 'not reachable' : one.doc.server.standby ? 'standby' : 'primary'
      stdout.write(`${hosts.length > 1 ? '\n' : ''}${cut(`=== ${server.endpoint} (${what}) ===`, Math.max(60, columns))}\n`)
      if (one.error) stdout.write(`${describeError(one.error)}\n`)
      else {
        stdout.write(renderText(one.doc, { width: columns }))
        if (opts.killOrphans) stdout.write(renderTerminated(one.doc, { width: columns }))
      }
    }
  }
  // Every server unreachable is a connection error; one of several is a problem to report.
  const reached = hosts.filter((h) => !h.error)
  const exitCode = reached.length === 0 ? 2 : hosts.some((h) => h.error || h.exitCode !== 0) ? 1 : 0
  if (opts.json) stdout.write(JSON.stringify({ onepoolDoctor: 1, target, hosts, exitCode }, null, 2) + '\n')
  else if (reached.length < hosts.length) stderr.write(`onepool doctor: ${hosts.length - reached.length} of ${hosts.length} servers could not be reached\n`)
  return exitCode
}

/**
 * Examines one server: `{ doc }` (the report, see the top of this file), or `{ error, stage }`
 * when it could not be reached or read.
 */
async function examine(createPool, url, opts) {
  let pgbouncer = false
  try {
    const v = new URL(url).searchParams.get('pgbouncer')
    pgbouncer = v === 'true' || v === '1'
  } catch {
    // onepool reports unparsable URLs itself, redacted.
  }
  let pool
  try {
    pool = createPool({
      connectionString: url,
      name: 'onepool-doctor',
      applicationName: 'onepool-doctor',
      max: 1,
      connectTimeoutMs: 10000,
      acquireTimeoutMs: 15000,
    })
  } catch (e) {
    return { error: e, stage: 'config' }
  }
  try {
    let snap
    try {
      snap = await snapshot(pool)
    } catch (e) {
      return { error: e, stage: 'connect' }
    }
    const machine = {
      host: system.tagHost(),
      processExists: system.processExists,
      establishedTcp: system.establishedTcp(),
      pgbouncer,
    }
    const report = analyze(snap, machine, { idleInTransactionSeconds: opts.idleTx })
    let terminated = []
    if (opts.killOrphans) {
      try {
        terminated = await killOrphans(pool, report, snap.info, system.processExists)
      } catch (e) {
        return { error: e, stage: 'kill-orphans' }
      }
    }
    const exitCode = report.problems.length > 0 ? 1 : 0
    const doc = {
      onepoolDoctor: 1,
      checkedAt: snap.info.now,
      target: pool.stats().target,
      database: snap.info.database,
      host: machine.host,
      doctor: { pid: process.pid, backendPid: snap.info.selfPid, clientAddr: snap.info.selfAddr },
      thresholds: { idleInTransactionSeconds: opts.idleTx, nearLimitPercent: Math.round(NEAR_LIMIT * 100) },
      role: report.role,
      server: { ...report.server, standby: snap.info.standby },
      groups: report.groups,
      connections: report.connections,
      problems: report.problems,
      notes: report.notes,
      killOrphans: opts.killOrphans,
      terminated,
      exitCode,
    }
    return { doc }
  } finally {
    await pool.end({ timeoutMs: 5000 }).catch(() => {})
  }
}

module.exports = { run, parse, snapshot, killOrphans, HELP }
