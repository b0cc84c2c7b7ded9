'use strict'
// The example's database: an embedded PostgreSQL with the `app` role limited to ROLE_LIMIT
// connections, and a sampler of that role's connections in pg_stat_activity on its own connection.

const { ROLE, ROLE_PASSWORD, ROLE_LIMIT, SAMPLE_MS, sleep } = require('./constants')

async function startDatabase() {
  const { startServer } = require('../embedded-server')
  const server = await startServer({ maxConnections: 100 })
  const pg = require('pg')
  const admin = new pg.Client({ connectionString: server.superuserUrl, application_name: 'e2e-admin' })
  await admin.connect()
  await admin.query(`create role ${ROLE} login password '${ROLE_PASSWORD}' connection limit ${ROLE_LIMIT}`)
  await admin.query(`grant all on schema public to ${ROLE}`)
  // The Prisma baseline's table (Prisma's migrate needs its engine, which cannot be downloaded here).
  await admin.query(`create table "Visit" (id serial primary key, route text not null, at timestamp(3) not null default now())`)
  await admin.query(`alter table "Visit" owner to ${ROLE}`)
  const sampler = new Sampler(admin)
  return { server, admin, sampler, appUrl: server.url(ROLE, ROLE_PASSWORD, 'postgres') }
}

/** Samples the role's connections in pg_stat_activity every SAMPLE_MS on its own connection. */
class Sampler {
  constructor(client) {
    this.client = client
    this.current = 0
    this.windows = new Set()
    this.lastDone = 0
    this.running = true
    this.loop = this.#run()
  }

  async #run() {
    while (this.running) {
      const t0 = Date.now()
      const r = await this.client.query(`select coalesce(array_agg(pid), '{}') as pids from pg_stat_activity where usename = $1`, [ROLE])
      const pids = r.rows[0].pids
      const n = pids.length
      this.current = n
      // a sample counts for a window only if it was taken after the window opened
      for (const w of this.windows) {
        if (t0 < w.start) continue
        w.peak = Math.max(w.peak, n)
        for (const pid of pids) w.backends.add(pid)
      }
      this.lastDone = t0
      await sleep(Math.max(0, SAMPLE_MS - (Date.now() - t0)))
    }
  }

  async count(extra = '') {
    const r = await this.client.query(`select count(*)::int as n from pg_stat_activity where usename = $1 ${extra}`, [ROLE])
    return r.rows[0].n
  }

  /** A window: its peak covers every sample taken until end(). */
  window() {
    const w = { peak: 0, start: Date.now(), backends: new Set() }
    this.windows.add(w)
    return {
      /** The peak; `backends` also counts the distinct server processes seen. */
      end: async () => {
        // one more sample started after the last request ended
        const end = Date.now()
        while (this.running && this.lastDone <= end) await sleep(10)
        this.windows.delete(w)
        return w.peak
      },
      get backends() {
        return w.backends.size
      },
    }
  }

  /** Waits until the role holds at most `n` connections; returns the count seen last. */
  async waitAtMost(n, timeoutMs, extra = '') {
    const deadline = Date.now() + timeoutMs
    let seen = await this.count(extra)
    while (seen > n && Date.now() < deadline) {
      await sleep(SAMPLE_MS)
      seen = await this.count(extra)
    }
    return seen
  }

  async stop() {
    this.running = false
    await this.loop
  }
}

module.exports = { startDatabase }
