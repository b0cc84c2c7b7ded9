'use strict'
// Streams and COPY over TLS. A TLS connection is read by its I/O task alone (no direct socket
// reads), so COPY's backpressure there is the task waiting before it reads on: checked through the
// server (ClientWrite), next to a stream and a COPY round trip.

const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const { createPool } = require('../..')
const { startServer, SUPERUSER, PASSWORD } = require('../../scripts/embedded-server')
const { makeCerts } = require('../helpers/certs')
const { uniqueName, waitFor } = require('../helpers/db')

const LIMIT = { timeout: 120000 }
let server
let certs
let pool
const app = uniqueName('tls_streams')

test.before(async () => {
  certs = makeCerts()
  server = await startServer({ flags: ['-c', 'ssl=on', '-c', `ssl_cert_file=${certs.cert}`, '-c', `ssl_key_file=${certs.key}`] })
  pool = createPool({
    connectionString: `postgres://${SUPERUSER}:${PASSWORD}@127.0.0.1:${server.port}/postgres?sslmode=require`,
    name: uniqueName(),
    applicationName: app,
    max: 2,
  })
})

test.after(async () => {
  await pool.end()
  await server.stop()
  certs.cleanup()
})

const sha = (buf) => crypto.createHash('sha256').update(buf).digest('hex')

test('a stream and a COPY round trip over TLS', LIMIT, async () => {
  assert.equal((await pool.query('select ssl from pg_stat_ssl where pid = pg_backend_pid()')).rows[0].ssl, true)
  let n = 0
  for await (const row of pool.stream('select g from generate_series(1, 50000) g', [], { batchSize: 500 })) n += row.g === n + 1 ? 1 : 0
  assert.equal(n, 50000)
  await pool.query('create table tls_copy (id int, label text)')
  const data = Buffer.from(Array.from({ length: 30000 }, (_, i) => `${i}\tü ${i}\n`).join(''))
  assert.deepEqual(await pool.copyFrom('copy tls_copy from stdin', [data]), { rowCount: 30000 })
  const chunks = []
  for await (const chunk of pool.copyTo('copy (select * from tls_copy order by id) to stdout')) chunks.push(chunk)
  assert.equal(sha(Buffer.concat(chunks)), sha(data))
  assert.equal(pool.stats().inUse, 0)
})

test('a COPY TO reader that stops over TLS leaves the server waiting to write', LIMIT, async () => {
  const out = pool.copyTo(`copy (select g, repeat('t', 500) from generate_series(1, 1000000) g) to stdout`)
  const it = out[Symbol.asyncIterator]()
  await it.next()
  const status = () => pool.query('select wait_event from pg_stat_activity where application_name like $1 and query like $2', [`${app}%`, 'copy (select g%'])
  const waiting = await waitFor(async () => (await status()).rows.some((r) => r.wait_event === 'ClientWrite'))
  assert.ok(waiting, JSON.stringify((await status()).rows))
  await it.return()
  assert.equal(pool.stats().inUse, 0)
  assert.equal((await pool.query('select 1 as one')).rows[0].one, 1)
})
