'use strict'
// A worker thread that samples pg_stat_activity for one application_name on its own event
// loop, so that a load saturating the main thread's loop cannot starve the sampling.
// workerData: { url, appName, everyMs, appNameSql }. Posts { cmd: 'ready' } once connected,
// and answers { cmd: 'stop' } with { cmd: 'stopped', peak, samples, errors }.

const { parentPort, workerData } = require('node:worker_threads')
const pg = require('pg')

const { url, appName, everyMs, appNameSql } = workerData
let running = true
let peak = 0
let samples = 0
let errors = 0

parentPort.on('message', (m) => {
  if (m.cmd === 'stop') running = false
})

;(async () => {
  let client = null
  let announced = false
  while (running) {
    try {
      if (!client) {
        client = new pg.Client({ connectionString: url, application_name: 'onepool-test-watch' })
        client.on('error', () => {})
        await client.connect()
      }
      const r = await client.query(`select count(*)::int as n from pg_stat_activity where ${appNameSql} = $1`, [appName])
      peak = Math.max(peak, r.rows[0].n)
      samples++
      if (!announced) {
        announced = true
        parentPort.postMessage({ cmd: 'ready' })
      }
    } catch {
      errors++
      if (client) client.end().catch(() => {})
      client = null
    }
    await new Promise((res) => setTimeout(res, everyMs))
  }
  if (client) await client.end().catch(() => {})
  parentPort.postMessage({ cmd: 'stopped', peak, samples, errors })
})()
