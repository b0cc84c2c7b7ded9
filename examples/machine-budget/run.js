'use strict'
// Four Node processes, each `createPool({ max: 5, machineMax: 5 })`, run queries at once; then
// one of them is SIGKILLed while it holds connections. Prints what the server saw.
//   node examples/machine-budget/run.js        (embedded Postgres, or DATABASE_URL)

const { spawn } = require('node:child_process')
const path = require('node:path')
const pg = require('pg')

const CHILD = `
const { createPool } = require(${JSON.stringify(path.join(__dirname, '..', '..'))})
const pool = createPool({ connectionString: process.env.URL, applicationName: 'budget-demo', max: 5, machineMax: 5, idleTimeoutMs: 0 })
const sleep = Number(process.env.SLEEP)
Promise.all(Array.from({ length: 20 }, () => pool.query('select pg_sleep($1)', [sleep]).then(() => 'ok', (e) => e.code)))
  .then((r) => { console.log(JSON.stringify({ pid: process.pid, ok: r.filter((x) => x === 'ok').length, failed: r.filter((x) => x !== 'ok') })); process.exit(0) })
`

function child(url, sleep) {
  const p = spawn(process.execPath, ['-e', CHILD], { env: { ...process.env, URL: url, SLEEP: String(sleep) }, stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  p.stdout.on('data', (d) => (out += d))
  p.done = new Promise((r) => p.on('exit', (code, signal) => r({ code, signal, out: out.trim() })))
  return p
}

async function main() {
  let server
  let url = process.env.DATABASE_URL
  if (!url) {
    server = await require('../../scripts/embedded-server').startServer()
    url = server.superuserUrl
  }
  const admin = new pg.Client({ connectionString: url })
  await admin.connect()
  const count = async () =>
    (await admin.query("select count(*)::int n from pg_stat_activity where application_name like 'budget-demo [%'")).rows[0].n
  let peak = 0
  let sampling = true
  const sampler = (async () => {
    while (sampling) {
      peak = Math.max(peak, await count())
      await new Promise((r) => setTimeout(r, 20))
    }
  })()

  const t0 = Date.now()
  const four = [1, 2, 3, 4].map(() => child(url, 0.05))
  const results = await Promise.all(four.map((p) => p.done))
  console.log(`4 processes × max 5, machineMax 5: peak ${peak} server connections, ${results.map((r) => JSON.parse(r.out).ok).reduce((a, b) => a + b)}/80 queries ok, ${Date.now() - t0} ms`)

  peak = 0
  const holder = child(url, 30)
  while ((await count()) < 5) await new Promise((r) => setTimeout(r, 20))
  const waiter = child(url, 0.01)
  await new Promise((r) => setTimeout(r, 300))
  console.log(`a process holds ${await count()} connections in pg_sleep(30); another waits for a slot`)
  const killedAt = Date.now()
  holder.kill('SIGKILL')
  const w = await waiter.done
  console.log(`SIGKILL the holder: the waiter's 20 queries finished ${Date.now() - killedAt} ms later (${JSON.parse(w.out).ok} ok)`)
  console.log(
    `the server meanwhile saw up to ${peak}: the killed process's backends go on sleeping until their statement ends ` +
      '(Postgres notices a dead client only when it next talks to it); `onepool doctor --kill-orphans` ends them',
  )
  sampling = false
  await sampler
  await admin.query("select pg_terminate_backend(pid) from pg_stat_activity where application_name like 'budget-demo [%'")
  await admin.end()
  if (server) await server.stop()
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
