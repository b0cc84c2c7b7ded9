'use strict'
// Turns a snapshot of pg_stat_activity (taken by cli/doctor.js) into the doctor's report:
// every connection classified, grouped, and the problems found. Pure: what it needs to know
// about this machine (host name, which processes exist, which TCP connections are open) comes
// in as arguments, so the tests can feed it any situation.

const { duration, appLabel, plural } = require('./format')
const { sameHost } = require('./system')

/** onepool's tag at the end of application_name: "<name> [<pid>@<host>]" (src/config.rs). */
const TAG = / \[(\d+)@([^\]]*)\]$/

const NEAR_LIMIT = 0.8

function parseTag(applicationName) {
  const m = TAG.exec(applicationName || '')
  if (!m) return null
  return { name: applicationName.slice(0, m.index), pid: Number(m[1]), host: m[2] }
}

/** Unix socket (no address) or loopback: a connection made on the database server's machine. */
function isLocalAddress(addr) {
  if (addr == null || addr === '') return true
  return /^127\./.test(addr) || addr === '::1' || /^::ffff:127\./i.test(addr)
}

function sameMachineAddress(addr, selfAddr) {
  if ((addr || null) === (selfAddr || null)) return true
  return isLocalAddress(addr) && isLocalAddress(selfAddr)
}

const STATE_ORDER = ['active', 'idle in transaction', 'idle in transaction (aborted)', 'fastpath function call', 'idle', 'disabled']

/**
 * @param {object} snapshot `{ info, rows }` as collected by cli/doctor.js
 * @param {object} machine
 * @param {string} machine.host this machine's tag host (system.tagHost())
 * @param {(pid: number) => boolean | null} machine.processExists
 * @param {Set<string> | null} machine.establishedTcp "localPort:remotePort" of open TCP connections
 * @param {boolean} [machine.pgbouncer] the doctor's own URL goes through PgBouncer
 * @param {object} [thresholds]
 * @param {number} [thresholds.idleInTransactionSeconds] shorter idle-in-transaction spells are not problems
 */
function analyze(snapshot, machine, thresholds = {}) {
  const { info, rows } = snapshot
  const idleTxSeconds = thresholds.idleInTransactionSeconds ?? 5
  const notes = []

  const connections = rows.map((r) => classify(r, info, machine))

  // Limits. The doctor's own connection is not counted: it goes away when the doctor exits.
  const roleUsed = connections.filter((c) => c.user === info.role).length
  const roleLimit = info.roleConnLimit != null && info.roleConnLimit >= 0 ? info.roleConnLimit : null
  const role = {
    name: info.role,
    superuser: !!info.roleSuperuser,
    used: roleUsed,
    // Superusers are not held to their role's connection limit.
    limit: info.roleSuperuser ? null : roleLimit,
    configuredLimit: roleLimit,
    percent: null,
  }
  if (role.limit != null) role.percent = role.limit === 0 ? 100 : Math.round((100 * roleUsed) / role.limit)

  const maxConnections = info.maxConnections
  const reservedForSuperusers = (info.superuserReserved || 0) + (info.reserved || 0)
  const serverLimit = Math.max(0, maxConnections - reservedForSuperusers)
  const server = {
    version: info.serverVersion,
    used: connections.length,
    limit: serverLimit,
    maxConnections,
    superuserReservedConnections: info.superuserReserved || 0,
    reservedConnections: info.reserved || 0,
    percent: serverLimit === 0 ? 100 : Math.round((100 * connections.length) / serverLimit),
  }

  const problems = []
  for (const c of connections) {
    if (c.orphaned) {
      problems.push({
        kind: 'orphaned',
        backendPid: c.backendPid,
        application: c.application,
        owner: c.owner.tag,
        state: c.state,
        seconds: c.stateSeconds,
        message:
          `orphaned onepool connection: backend ${c.backendPid} (${appLabel(c.application)}) ` +
          `belongs to process ${c.owner.tag}, which no longer exists; ${c.state || 'state unknown'} for ${duration(c.stateSeconds)}`,
      })
    }
  }
  for (const c of connections) {
    if (c.idleInTransaction && (c.stateSeconds ?? 0) >= idleTxSeconds) {
      const who = [appLabel(c.application), c.user, c.clientAddr ? `from ${c.clientAddr}` : 'local'].filter(Boolean).join(', ')
      problems.push({
        kind: 'idle-in-transaction',
        backendPid: c.backendPid,
        application: c.application,
        user: c.user,
        clientAddr: c.clientAddr,
        owner: c.owner ? c.owner.tag : null,
        aborted: c.state === 'idle in transaction (aborted)',
        seconds: c.stateSeconds,
        transactionSeconds: c.transactionSeconds,
        message:
          `${c.state === 'idle in transaction (aborted)' ? 'idle in aborted transaction' : 'idle in transaction'} ` +
          `for ${duration(c.stateSeconds)}: backend ${c.backendPid} (${who}) holds its transaction open`,
      })
    }
  }
  if (role.limit != null && role.used >= NEAR_LIMIT * role.limit) {
    problems.push({
      kind: 'role-near-limit',
      role: role.name,
      used: role.used,
      limit: role.limit,
      percent: role.percent,
      message:
        role.used >= role.limit
          ? `role ${role.name} is at its connection limit: ${role.used} / ${role.limit}`
          : `role ${role.name} is near its connection limit: ${role.used} / ${role.limit} (${role.percent}%)`,
    })
  }
  if (server.used >= NEAR_LIMIT * server.limit) {
    problems.push({
      kind: 'server-near-limit',
      used: server.used,
      limit: server.limit,
      maxConnections,
      percent: server.percent,
      message:
        (server.used >= server.limit ? 'the server is at max_connections: ' : 'the server is near max_connections: ') +
        `${server.used} / ${server.limit} (${server.percent}%, ${maxConnections} minus ${reservedForSuperusers} reserved)`,
    })
  }

  for (const c of connections) {
    if (c.owner && c.owner.status === 'gone' && !c.orphaned) {
      notes.push(`backend ${c.backendPid} (${appLabel(c.application)}): process ${c.owner.tag} no longer exists, but it is not treated as orphaned: ${c.orphanVeto}`)
    }
  }
  const hidden = connections.filter((c) => !c.visible).length
  if (hidden > 0) {
    notes.push(
      `${plural(hidden, 'session')} of other roles ${hidden === 1 ? 'is' : 'are'} only partly visible to ${info.role} ` +
        '(no state, client or timing): connect as a superuser or a member of pg_read_all_stats to see them',
    )
  }
  if (info.roleSuperuser && roleLimit != null) {
    notes.push(`role ${info.role} has a connection limit of ${roleLimit}, which does not apply to superusers`)
  }

  return {
    role,
    server,
    connections,
    groups: group(connections),
    problems,
    notes,
  }
}

function classify(r, info, machine) {
  const visible = r.backend_type != null
  const tag = parseTag(r.application_name)
  const c = {
    backendPid: r.pid,
    user: r.usename,
    database: r.datname,
    applicationName: r.application_name || '',
    application: tag ? tag.name : r.application_name || '',
    clientAddr: r.client_addr ?? null,
    clientPort: r.client_port ?? null,
    state: r.state ?? null,
    stateSeconds: r.state_seconds ?? null,
    transactionSeconds: r.xact_seconds ?? null,
    backendStart: r.backend_start ?? null,
    waitEvent: r.wait_event ? `${r.wait_event_type}:${r.wait_event}` : null,
    visible,
    onepool: !!tag,
    owner: null,
    idleInTransaction: r.state === 'idle in transaction' || r.state === 'idle in transaction (aborted)',
    orphaned: false,
    orphanVeto: null,
  }
  if (!tag) return c
  c.owner = { pid: tag.pid, host: tag.host, tag: `${tag.pid}@${tag.host}`, status: 'unknown' }
  if (!sameHost(tag.host, machine.host)) {
    c.owner.status = 'other-host'
    return c
  }
  const exists = machine.processExists(tag.pid)
  if (exists === true) c.owner.status = 'alive'
  if (exists !== false) return c
  c.owner.status = 'gone'
  // The owner is gone from this machine. Terminating is only safe with proof that the backend
  // is really that process's connection and nobody else's:
  if (machine.pgbouncer) {
    c.orphanVeto = 'the doctor connects through PgBouncer, whose server connections outlive their clients; run it against the server directly'
  } else if (!visible) {
    c.orphanVeto = `its client address is hidden from role ${info.role}`
  } else if (!sameMachineAddress(c.clientAddr, info.selfAddr)) {
    c.orphanVeto = `it connects from ${c.clientAddr || 'a local socket'}, this doctor from ${info.selfAddr || 'a local socket'} (another machine with the same host name?)`
  } else if (
    machine.establishedTcp &&
    c.clientPort != null &&
    c.clientPort > 0 &&
    info.serverPort != null &&
    machine.establishedTcp.has(`${c.clientPort}:${info.serverPort}`)
  ) {
    c.orphanVeto = `its TCP connection (port ${c.clientPort}) is still open on this machine, held by another process`
  } else {
    c.orphaned = true
  }
  return c
}

function group(connections) {
  const groups = new Map()
  for (const c of connections) {
    const state = c.visible ? c.state : 'hidden'
    const key = JSON.stringify([c.application, c.clientAddr, c.owner && c.owner.tag, c.owner && c.owner.status, state, c.orphaned])
    let g = groups.get(key)
    if (!g) {
      g = {
        application: c.application,
        clientAddr: c.clientAddr,
        owner: c.owner ? c.owner.tag : null,
        ownerStatus: c.owner ? c.owner.status : null,
        state,
        orphaned: c.orphaned,
        count: 0,
        longestSeconds: null,
        backendPids: [],
      }
      groups.set(key, g)
    }
    g.count++
    g.backendPids.push(c.backendPid)
    if (c.stateSeconds != null) g.longestSeconds = Math.max(g.longestSeconds ?? 0, c.stateSeconds)
  }
  const rank = (s) => {
    const i = STATE_ORDER.indexOf(s)
    return i < 0 ? STATE_ORDER.length : i
  }
  return [...groups.values()].sort(
    (a, b) =>
      a.application.localeCompare(b.application) ||
      String(a.owner ?? '').localeCompare(String(b.owner ?? ''), undefined, { numeric: true }) ||
      String(a.clientAddr ?? '').localeCompare(String(b.clientAddr ?? '')) ||
      rank(a.state) - rank(b.state),
  )
}

module.exports = { analyze, parseTag, isLocalAddress, NEAR_LIMIT }
