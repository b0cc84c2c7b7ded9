'use strict'
// `onepool doctor` against the live test server, with a known mix of connections: onepool from a
// live process, onepool from a process killed with SIGKILL while its backend sleeps (an orphan),
// a plain node-postgres session, a session idle in transaction, and a session carrying another
// host's tag. The doctor runs as a separate process, as a user would run it.

const { describe, test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const readline = require('node:readline')
const { spawn } = require('node:child_process')
const pg = require('pg')
const { TEST_URL, APP_NAME, admin, createRole, dropRole, uniqueName, waitFor } = require('../helpers/db')
const { analyze, parseTag } = require('../../cli/analyze')
const { wrap } = require('../../cli/report')
const system = require('../../cli/system')
const { freePort } = require('../../scripts/embedded-server')

const ROOT = path.join(__dirname, '..', '..')
const BIN = path.join(ROOT, 'bin', 'onepool.js')
const OWNER = path.join(ROOT, '__test__', 'fixtures', 'doctor-owner.js')
const HOST = system.tagHost()

/** Runs `onepool doctor ...args` in its own process; resolves { code, stdout, stderr }. */
function doctor(args, env = { DATABASE_URL: TEST_URL }) {
  const childEnv = { ...process.env, ...env }
  if (!('DATABASE_URL' in env)) delete childEnv.DATABASE_URL
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'doctor', ...args], { env: childEnv, cwd: ROOT })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const guard = setTimeout(() => child.kill('SIGKILL'), 30000)
    child.on('error', reject)
    child.on('exit', (code, signal) => {
      clearTimeout(guard)
      resolve({ code: signal ? `signal ${signal}` : code, stdout, stderr })
    })
  })
}

async function doctorJson(args, env) {
  const r = await doctor(['--json', ...args], env)
  let doc
  try {
    doc = JSON.parse(r.stdout)
  } catch {
    assert.fail(`--json did not print JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`)
  }
  return { ...r, doc }
}

function exited(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve()
    else child.once('exit', () => resolve())
  })
}

async function backendPidsOf(appName) {
  const r = await admin(`select pid from pg_stat_activity where ${APP_NAME} = $1 order by pid`, [appName])
  return r.rows.map((x) => x.pid)
}

async function alive(backendPid) {
  const r = await admin('select count(*)::int as n from pg_stat_activity where pid = $1', [backendPid])
  return r.rows[0].n === 1
}

describe('onepool doctor on a known mix of connections', () => {
  const apps = { live: uniqueName('live'), orphan: uniqueName('orphan'), tx: uniqueName('tx'), remote: uniqueName('remote') }
  const remoteHost = `elsewhere-${HOST}`.slice(0, 20)
  const children = []
  const clients = []
  let live // { child, pid, backendPid, lines }
  let orphan // { pid, backendPid }
  let plain // { backendPid }
  let tx // { backendPid }
  let remote // { backendPid }

  async function client(applicationName, url = TEST_URL) {
    const c = new pg.Client({ connectionString: url, application_name: applicationName })
    c.on('error', () => {})
    await c.connect()
    clients.push(c)
    return c
  }

  before(async () => {
    // onepool in a live process: a query, then it idles until its stdin closes.
    const liveChild = spawn(process.execPath, [OWNER], {
      env: { ...process.env, URL: TEST_URL, APP: apps.live, MODE: 'live' },
      stdio: ['pipe', 'pipe', 'inherit'],
    })
    children.push(liveChild)
    const lines = readline.createInterface({ input: liveChild.stdout })[Symbol.asyncIterator]()
    const first = JSON.parse((await lines.next()).value)
    live = { child: liveChild, pid: liveChild.pid, backendPid: first.backendPid, lines }

    // onepool in a process that is killed while its backend runs pg_sleep: the backend lingers.
    const sleeper = spawn(process.execPath, [OWNER], {
      env: { ...process.env, URL: TEST_URL, APP: apps.orphan, MODE: 'sleep' },
      stdio: 'ignore',
    })
    children.push(sleeper)
    const sleeping = await waitFor(async () => {
      const r = await admin(
        `select pid from pg_stat_activity where ${APP_NAME} = $1 and state = 'active' and query like '%pg_sleep%'`,
        [apps.orphan],
      )
      return r.rows[0] && r.rows[0].pid
    })
    assert.ok(sleeping, 'the sleeping backend appeared')
    sleeper.kill('SIGKILL')
    await exited(sleeper)
    orphan = { pid: sleeper.pid, backendPid: sleeping }
    assert.equal(system.processExists(orphan.pid), false, 'the killed process is gone')

    // A plain session, not onepool.
    const p = await client('psql')
    plain = { backendPid: (await p.query('select pg_backend_pid() as pid')).rows[0].pid }

    // A session idle in transaction.
    const t = await client(apps.tx)
    await t.query('begin')
    tx = { backendPid: (await t.query('select pg_backend_pid() as pid')).rows[0].pid }

    // onepool's tag from another machine, whose pid does not exist here: never an orphan of ours.
    assert.notEqual(remoteHost.toLowerCase(), HOST.toLowerCase())
    const r = await client(`${apps.remote} [${orphan.pid}@${remoteHost}]`)
    remote = { backendPid: (await r.query('select pg_backend_pid() as pid')).rows[0].pid }

    assert.equal(await alive(orphan.backendPid), true, 'the orphan lingers after its process died')
  })

  after(async () => {
    for (const c of clients) await c.end().catch(() => {})
    if (live) live.child.stdin.end()
    for (const child of children) {
      const guard = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited(child)
      clearTimeout(guard)
    }
    // Whatever a failed test left behind.
    await admin(`select pg_terminate_backend(pid) from pg_stat_activity where ${APP_NAME} = any($1)`, [Object.values(apps)])
  })

  test('--json classifies every connection', async () => {
    const { code, doc, stderr } = await doctorJson(['--idle-tx', '0'])
    assert.equal(code, 1, stderr)
    assert.equal(doc.exitCode, 1)
    assert.equal(doc.host, HOST)
    const byPid = new Map(doc.connections.map((c) => [c.backendPid, c]))
    assert.ok(!byPid.has(doc.doctor.backendPid), "the doctor's own connection is not listed")

    const l = byPid.get(live.backendPid)
    assert.equal(l.application, apps.live)
    assert.equal(l.onepool, true)
    assert.deepEqual(l.owner, { pid: live.pid, host: HOST, tag: `${live.pid}@${HOST}`, status: 'alive' })
    assert.equal(l.orphaned, false)
    assert.equal(l.state, 'idle')

    const o = byPid.get(orphan.backendPid)
    assert.equal(o.application, apps.orphan)
    assert.equal(o.onepool, true)
    assert.equal(o.owner.pid, orphan.pid)
    assert.equal(o.owner.status, 'gone')
    assert.equal(o.orphaned, true)
    assert.equal(o.state, 'active')

    const p = byPid.get(plain.backendPid)
    assert.equal(p.application, 'psql')
    assert.equal(p.onepool, false)
    assert.equal(p.owner, null)
    assert.equal(p.orphaned, false)
    assert.equal(p.idleInTransaction, false)

    const t = byPid.get(tx.backendPid)
    assert.equal(t.application, apps.tx)
    assert.equal(t.state, 'idle in transaction')
    assert.equal(t.idleInTransaction, true)
    assert.equal(t.orphaned, false)

    const r = byPid.get(remote.backendPid)
    assert.equal(r.application, apps.remote)
    assert.equal(r.owner.status, 'other-host')
    assert.equal(r.orphaned, false)

    const problem = (kind, pid) => doc.problems.find((x) => x.kind === kind && x.backendPid === pid)
    assert.ok(problem('orphaned', orphan.backendPid), 'the orphan is a problem')
    assert.ok(problem('idle-in-transaction', tx.backendPid), 'the idle transaction is a problem')
    for (const pid of [live.backendPid, plain.backendPid, remote.backendPid]) {
      assert.equal(doc.problems.some((x) => x.backendPid === pid), false, `backend ${pid} is no problem`)
    }
    assert.equal(doc.problems.some((x) => x.kind === 'role-near-limit'), false, 'a superuser has no role limit')
    assert.equal(doc.role.superuser, true)

    // Groups: by application, client, owner and state.
    const g = doc.groups.find((x) => x.application === apps.orphan)
    assert.deepEqual(
      { owner: g.owner, ownerStatus: g.ownerStatus, state: g.state, count: g.count, orphaned: g.orphaned, backendPids: g.backendPids },
      { owner: `${orphan.pid}@${HOST}`, ownerStatus: 'gone', state: 'active', count: 1, orphaned: true, backendPids: [orphan.backendPid] },
    )
    // Limits: used / limit, the doctor not counted.
    assert.equal(doc.server.used, doc.connections.length)
    assert.equal(doc.server.limit, doc.server.maxConnections - doc.server.superuserReservedConnections - doc.server.reservedConnections)
    assert.equal(doc.role.used, doc.connections.filter((c) => c.user === doc.role.name).length)
  })

  test('the text report shows the mix and names each problem, within 80 columns', async () => {
    const { code, stdout, stderr } = await doctor(['--idle-tx', '0'])
    assert.equal(code, 1, stderr)
    for (const line of stdout.split('\n')) assert.ok(line.length <= 80, `line longer than 80 columns: ${JSON.stringify(line)}`)
    assert.match(stdout, /^Limits/m)
    assert.match(stdout, /role postgres\s+\d+ \/ none/)
    assert.match(stdout, /server\s+\d+ \/ \d+/)
    assert.ok(stdout.includes(`${live.pid}@${HOST} alive`), stdout)
    assert.ok(stdout.includes(`${orphan.pid}@${HOST} gone`), stdout)
    assert.match(stdout, /psql\s+127\.0\.0\.1\s+-\s+idle/)
    assert.match(stdout, new RegExp(`^! orphaned onepool connection: backend ${orphan.backendPid} \\(${apps.orphan}\\)`, 'm'))
    assert.match(stdout, new RegExp(`^! idle in transaction for \\d+s: backend ${tx.backendPid} \\(${apps.tx},`, 'm'))
    assert.match(stdout, /onepool doctor --kill-orphans/)
  })

  test('a role near its connection limit; what it cannot see it never calls an orphan', async () => {
    const role = await createRole({ connectionLimit: 5 })
    try {
      for (let i = 0; i < 4; i++) await client('api', role.url)
      const { code, doc } = await doctorJson(['--idle-tx', '0', '--kill-orphans'], { DATABASE_URL: role.url })
      assert.equal(code, 1)
      const p = doc.problems.find((x) => x.kind === 'role-near-limit')
      assert.deepEqual({ role: p.role, used: p.used, limit: p.limit, percent: p.percent }, { role: role.name, used: 4, limit: 5, percent: 80 })
      const o = doc.connections.find((c) => c.backendPid === orphan.backendPid)
      assert.equal(o.visible, false)
      assert.equal(o.owner.status, 'gone')
      assert.equal(o.orphaned, false)
      assert.match(o.orphanVeto, /hidden/)
      assert.deepEqual(doc.terminated, [])
      assert.equal(await alive(orphan.backendPid), true)
      assert.ok(doc.notes.some((n) => /partly visible/.test(n)))

      const text = await doctor([], { DATABASE_URL: role.url })
      assert.match(text.stdout, new RegExp(`^! role ${role.name} is near its connection limit: 4 / 5 \\(80%\\)`, 'm'))
    } finally {
      for (const c of clients.splice(-4)) await c.end().catch(() => {})
      await dropRole(role.name)
    }
  })

  test('--kill-orphans terminates exactly the orphaned backends', async () => {
    const ours = [live.backendPid, orphan.backendPid, plain.backendPid, tx.backendPid, remote.backendPid]
    for (const pid of ours) assert.equal(await alive(pid), true, `backend ${pid} is there before`)

    const { code, doc, stderr } = await doctorJson(['--kill-orphans', '--url', TEST_URL], {})
    assert.equal(code, 1, stderr)
    const orphaned = doc.connections.filter((c) => c.orphaned).map((c) => c.backendPid)
    assert.ok(orphaned.includes(orphan.backendPid))
    assert.deepEqual(
      doc.terminated.map((t) => t.backendPid),
      orphaned,
      'it terminates what it classified as orphaned, nothing else',
    )
    const mine = doc.terminated.find((t) => t.backendPid === orphan.backendPid)
    assert.deepEqual(mine, { backendPid: orphan.backendPid, application: apps.orphan, owner: `${orphan.pid}@${HOST}`, result: 'terminated' })

    assert.equal(await waitFor(async () => !(await alive(orphan.backendPid))), true, 'the orphan is gone')
    for (const pid of [live.backendPid, plain.backendPid, tx.backendPid, remote.backendPid]) {
      assert.equal(await alive(pid), true, `backend ${pid} survives`)
    }
    assert.deepEqual(await backendPidsOf(apps.live), [live.backendPid])
    // The live process's pool still works, on the same connection.
    live.child.stdin.write('query\n')
    assert.deepEqual(JSON.parse((await live.lines.next()).value), { backendPid: live.backendPid })

    // Nothing left to kill; the idle transaction is younger than an hour: no problems.
    const again = await doctor(['--kill-orphans', '--idle-tx', '3600'])
    assert.equal(again.code, 0, again.stdout + again.stderr)
    assert.match(again.stdout, /No problems found\./)
    assert.match(again.stdout, /--kill-orphans: no orphaned connections, nothing terminated\./)
  })
})

describe('onepool doctor: usage and connection errors', () => {
  test('--help and a bad option', async () => {
    const help = await doctor(['--help'])
    assert.equal(help.code, 0)
    assert.match(help.stdout, /Usage: onepool doctor/)
    const bad = await doctor(['--bogus'])
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /--bogus/)
    const badNumber = await doctor(['--idle-tx', 'soon'])
    assert.equal(badNumber.code, 2)
    const unknown = await new Promise((resolve) => {
      const child = spawn(process.execPath, [BIN, 'nope'])
      child.on('exit', (code) => resolve(code))
    })
    assert.equal(unknown, 2)
  })

  test('no database given', async () => {
    const r = await doctor([], {})
    assert.equal(r.code, 2)
    assert.match(r.stderr, /set DATABASE_URL or pass --url/)
  })

  test('a wrong password: onepool error code, no password in the output', async () => {
    const u = new URL(TEST_URL)
    u.password = 'wrong-Secret-123'
    const r = await doctor([], { DATABASE_URL: u.toString() })
    assert.equal(r.code, 2)
    assert.match(r.stderr, /CONNECT_FAILED/)
    assert.match(r.stderr, /28P01/)
    assert.ok(!(r.stdout + r.stderr).includes('wrong-Secret-123'))
    const j = await doctorJson([], { DATABASE_URL: u.toString() })
    assert.equal(j.code, 2)
    assert.equal(j.doc.error.code, 'CONNECT_FAILED')
    assert.equal(j.doc.error.causeCode, '28P01')
    assert.ok(!j.stdout.includes('wrong-Secret-123'))
  })

  test('an unusable URL is CONFIG_INVALID, exit 2', async () => {
    const r = await doctor(['--url', 'mysql://u:hunter2@db/x'], {})
    assert.equal(r.code, 2)
    assert.match(r.stderr, /CONFIG_INVALID/)
    assert.ok(!r.stderr.includes('hunter2'))
  })
})

describe('onepool doctor on a multi-host target', () => {
  const u = new URL(TEST_URL)
  const hostList = (...ports) => `postgres://${u.username}:${u.password}@${ports.map((p) => `127.0.0.1:${p}`).join(',')}/postgres?target_session_attrs=any`

  test('each server gets its own report; one that is down is reported, exit 1', async () => {
    const dead = await freePort()
    const url = hostList(u.port, dead)
    const { code, doc, stdout } = await doctorJson([], { DATABASE_URL: url })
    assert.equal(code, 1, stdout)
    assert.equal(doc.exitCode, 1)
    assert.equal(doc.target, `${u.username}@127.0.0.1:${u.port},127.0.0.1:${dead}/postgres`)
    assert.deepEqual(
      doc.hosts.map((h) => h.endpoint),
      [`127.0.0.1:${u.port}`, `127.0.0.1:${dead}`],
    )
    const [up, down] = doc.hosts
    assert.equal(up.target, `${u.username}@127.0.0.1:${u.port}/postgres`)
    assert.equal(up.server.standby, false)
    assert.equal(typeof up.server.used, 'number')
    assert.equal(up.role.name, u.username)
    assert.equal(down.error.code, 'CONNECT_FAILED')
    assert.equal(down.error.causeCode, 'ECONNREFUSED')
    assert.ok(!stdout.includes(u.password), 'no password in the report')

    const text = await doctor([], { DATABASE_URL: url })
    assert.equal(text.code, 1)
    assert.match(text.stdout, new RegExp(`=== 127\\.0\\.0\\.1:${u.port} \\(primary\\) ===`))
    assert.match(text.stdout, new RegExp(`=== 127\\.0\\.0\\.1:${dead} \\(not reachable\\) ===`))
    assert.match(text.stderr, /1 of 2 servers could not be reached/)
  })

  test('no server reachable: exit 2', async () => {
    const { code, doc } = await doctorJson([], { DATABASE_URL: hostList(await freePort(), await freePort()) })
    assert.equal(code, 2)
    assert.equal(doc.hosts.length, 2)
    assert.ok(doc.hosts.every((h) => h.error.causeCode === 'ECONNREFUSED'))
  })
})

describe('orphan classification never claims what it cannot prove', () => {
  const info = { role: 'app', selfAddr: '10.0.0.5', serverPort: 5432, maxConnections: 100, superuserReserved: 3, reserved: 0, roleConnLimit: -1, roleSuperuser: false, serverVersion: '17' }
  const row = (over) => ({
    pid: 100,
    usename: 'app',
    datname: 'db',
    application_name: `web [4242@${HOST}]`,
    client_addr: '10.0.0.5',
    client_port: 50000,
    backend_type: 'client backend',
    state: 'active',
    state_seconds: 12,
    xact_seconds: 12,
    backend_start: '2026-01-01 00:00:00+00',
    ...over,
  })
  const machine = (over) => ({ host: HOST, processExists: () => false, establishedTcp: new Set(), pgbouncer: false, ...over })
  const one = (r, m) => analyze({ info, rows: [r] }, m).connections[0]

  test('the proof: this host, owner gone, same client address, no open socket', () => {
    const c = one(row(), machine())
    assert.equal(c.orphaned, true)
    assert.equal(c.owner.status, 'gone')
    // A unix socket or loopback on both sides is the same machine too.
    assert.equal(one(row({ client_addr: null, client_port: -1 }), machine()).orphaned, false, 'socket vs tcp 10.x differ')
    const local = { ...info, selfAddr: '127.0.0.1' }
    assert.equal(analyze({ info: local, rows: [row({ client_addr: null, client_port: -1 })] }, machine()).connections[0].orphaned, true)
  })

  test('each missing piece of proof keeps the connection alive', () => {
    const cases = [
      [row(), machine({ processExists: () => true }), 'alive', null], // exists (or EPERM)
      [row(), machine({ processExists: () => null }), 'unknown', null], // cannot tell
      [row({ application_name: 'web [4242@other-machine]' }), machine(), 'other-host', null],
      [row({ client_addr: '10.0.0.9' }), machine(), 'gone', /connects from 10\.0\.0\.9/],
      [row(), machine({ establishedTcp: new Set(['50000:5432']) }), 'gone', /still open/],
      [row(), machine({ pgbouncer: true }), 'gone', /PgBouncer/],
      [row({ backend_type: null, client_addr: null, state: null }), machine(), 'gone', /hidden/],
    ]
    for (const [r, m, status, veto] of cases) {
      const c = one(r, m)
      assert.equal(c.orphaned, false, JSON.stringify({ r, status }))
      assert.equal(c.owner.status, status)
      if (veto) assert.match(c.orphanVeto, veto)
    }
    assert.equal(one(row({ application_name: 'web' }), machine()).owner, null, 'no tag, no owner')
  })

  test('tags: stripped name, truncated names, host compared case-insensitively', () => {
    assert.deepEqual(parseTag('my app [123@box]'), { name: 'my app', pid: 123, host: 'box' })
    assert.deepEqual(parseTag(' [1@h]'), { name: '', pid: 1, host: 'h' })
    assert.equal(parseTag('psql'), null)
    assert.equal(parseTag('x [12@box] tail'), null)
    assert.equal(system.tagHost('Build-Agent-With-A-Long-Name.corp.example'), 'Build-Agent-With-A-L')
    assert.equal(one(row({ application_name: `web [4242@${HOST.toUpperCase()}]` }), machine()).orphaned, true)
  })

  test('idle-in-transaction threshold and limits', () => {
    const idle = row({ state: 'idle in transaction', state_seconds: 3, application_name: 'psql' })
    assert.equal(analyze({ info, rows: [idle] }, machine(), { idleInTransactionSeconds: 5 }).problems.length, 0)
    assert.equal(analyze({ info, rows: [idle] }, machine(), { idleInTransactionSeconds: 2 }).problems[0].kind, 'idle-in-transaction')
    const rows = Array.from({ length: 78 }, (_, i) => row({ pid: i + 1, state: 'idle', application_name: 'psql' }))
    const near = analyze({ info: { ...info, roleConnLimit: 100 }, rows }, machine())
    assert.deepEqual(near.problems.map((p) => p.kind), ['server-near-limit']) // 78 / 97, role 78 / 100
    assert.equal(near.server.limit, 97)
    const su = analyze({ info: { ...info, roleSuperuser: true, roleConnLimit: 1 }, rows: rows.slice(0, 2) }, machine())
    assert.equal(su.role.limit, null, 'superusers are not held to the role limit')
  })

  test('wrap keeps to the width', () => {
    const out = wrap('word '.repeat(50), 30, '! ', '  ')
    for (const line of out.trimEnd().split('\n')) assert.ok(line.length <= 30)
  })
})
