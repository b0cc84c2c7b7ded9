'use strict'
// A `next dev` / `next start` of the example in its own process group, and the requests the
// drivers send it: one route, the 30-route storm, the wait for an edit to be served.

const { spawn } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { ROOT, APP, LOG_DIR, NEXT_BIN, ROUTES, sleep } = require('./constants')

const activeServers = new Set()

class NextServer {
  constructor(name, args, env) {
    this.name = name
    this.logFile = path.join(LOG_DIR, `${name}.log`)
    this.out = fs.openSync(this.logFile, 'w')
    this.port = null
    this.args = args
    this.env = env
  }

  async start(port) {
    this.port = port
    this.child = spawn(process.execPath, [NEXT_BIN, ...this.args, '-p', String(port), '-H', '127.0.0.1'], {
      cwd: APP,
      env: this.env,
      stdio: ['ignore', this.out, this.out],
      detached: true, // its own process group: next dev's CLI and its next-server child stop together
    })
    activeServers.add(this)
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve(code ?? signal)))
    const deadline = Date.now() + 180_000
    while (Date.now() < deadline) {
      const r = await get(port, '/api/edit', 30_000)
      if (r.status === 200) return r
      if (this.child.exitCode !== null) break
      await sleep(500)
    }
    throw new Error(`${this.name} did not become ready; see ${path.relative(ROOT, this.logFile)}:\n${this.tail()}`)
  }

  tail(n = 40) {
    return fs.readFileSync(this.logFile, 'utf8').split('\n').slice(-n).join('\n')
  }

  logText() {
    return fs.readFileSync(this.logFile, 'utf8')
  }

  /** Pids of the server's process group (the CLI and next-server). */
  pids() {
    const out = []
    for (const entry of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue
      try {
        const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8')
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
        if (Number(fields[2]) === this.child.pid) out.push(Number(entry))
      } catch {
        // gone meanwhile
      }
    }
    return out
  }

  /** Every onepool `.node` file mapped into the server's processes. */
  nativeImages() {
    const images = new Set()
    for (const pid of this.pids()) {
      try {
        for (const line of fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
          const file = line.split(/\s+/).slice(5).join(' ')
          // By file name, not path: the checkout itself may sit in a folder called onepool.
          // Anything loaded from .next/ counts too (a bundler's hashed copy).
          const name = path.basename(file.replace(/ \(deleted\)$/, ''))
          const ours = name.includes('onepool') || file.includes(`${path.sep}.next${path.sep}`)
          if (name.endsWith('.node') && ours) images.add(`${pid}:${file}`)
        }
      } catch {
        // gone meanwhile
      }
    }
    return [...images]
  }

  /** Synchronous, for a signal handler. */
  kill() {
    try {
      process.kill(-this.child.pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }

  async stop() {
    activeServers.delete(this)
    if (!this.child || this.child.exitCode !== null) return
    try {
      process.kill(-this.child.pid, 'SIGTERM')
    } catch {
      // already gone
    }
    const done = await Promise.race([this.exited.then(() => true), sleep(10_000).then(() => false)])
    // next-server may outlive the CLI briefly: make sure the whole group is gone
    for (let i = 0; i < 50 && this.pids().length; i++) await sleep(100)
    if (!done || this.pids().length) {
      try {
        process.kill(-this.child.pid, 'SIGKILL')
      } catch {
        // already gone
      }
      await this.exited
    }
    fs.closeSync(this.out)
  }
}

async function get(port, urlPath, timeoutMs = 120_000) {
  const t0 = Date.now()
  try {
    const res = await fetch(`http://127.0.0.1:${port}${urlPath}`, { signal: AbortSignal.timeout(timeoutMs), cache: 'no-store' })
    const text = await res.text()
    let body = null
    try {
      body = JSON.parse(text)
    } catch {
      // an HTML error page
    }
    return { status: res.status, headers: res.headers, body, text, ms: Date.now() - t0 }
  } catch (e) {
    return { status: 0, error: e.cause ? `${e.message}: ${e.cause.message || e.cause}` : e.message, body: null, text: '', ms: Date.now() - t0 }
  }
}

/** Requests all 30 routes at once. */
async function storm(port, edit) {
  const results = await Promise.all(ROUTES.map((r) => get(port, `/api/${r}`).then((res) => ({ route: r, ...res }))))
  const failed = results.filter((r) => r.status !== 200 || !r.body || r.body.route !== r.route)
  const stale = results.filter((r) => r.status === 200 && r.body && r.body.edit !== edit)
  return { results, failed, stale }
}

function describeFailures(failed) {
  const kinds = new Map()
  for (const f of failed) {
    const m = /too many connections[^"\n]*"[^"]*"|too many connections[^\n<]*|\b(53300|POOL_TIMEOUT|ECONNREFUSED|ECONNRESET)\b/.exec(f.text || f.error || '')
    const key = `${f.status}${m ? ' ' + m[0] : ''}`
    kinds.set(key, (kinds.get(key) || 0) + 1)
  }
  return [...kinds].map(([k, n]) => `${n}× ${k}`).join(', ')
}

/** What the server logged for failed requests: "N× reason", most frequent first. */
function loggedFailures(logText) {
  const lines = logText.replace(/\x1b\[[0-9;]*m/g, '').split('\n')
  const kinds = new Map()
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i].startsWith('⨯')) continue
    const text = lines.slice(i, i + 6).join(' ')
    const sqlstate = /code: '(\d{5})'|Code: `(\d{5})`/.exec(lines.slice(i, i + 12).join('\n'))
    let key
    if (/too many connections for role/.test(text)) key = '53300 too many connections for role'
    else key = `${sqlstate ? (sqlstate[1] || sqlstate[2]) + ' ' : ''}${lines[i].slice(2).trim().slice(0, 70)}`
    kinds.set(key, (kinds.get(key) || 0) + 1)
  }
  return [...kinds].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${n}× ${k}`).join(', ')
}

/** Waits until the dev server serves lib/db.ts with EDIT = edit (the probe route does no query). */
async function waitForEdit(port, edit, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs
  let last
  while (Date.now() < deadline) {
    last = await get(port, '/api/edit', 30_000)
    if (last.status === 200 && last.body && last.body.edit === edit) return true
    await sleep(100)
  }
  return false
}


function devEnv(appUrl) {
  const env = { ...process.env, DATABASE_URL: appUrl, NEXT_TELEMETRY_DISABLED: '1', NODE_ENV: 'development' }
  delete env.NODE_OPTIONS
  delete env.PORT
  return env
}

async function freePort() {
  return require('../embedded-server').freePort()
}


module.exports = { NextServer, activeServers, get, storm, describeFailures, loggedFailures, waitForEdit, devEnv, freePort }
