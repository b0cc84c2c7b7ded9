'use strict'
// Notices from a server that misbehaves (__test__/helpers/fake-server.js): a flood of them for
// one request is held to 1 MiB and the request still answers; a malformed one closes the
// connection with PROTOCOL_ERROR like any other malformed message. The ordinary cases (order,
// failed requests, fields as pg shows them) run against the real server in pg-pool.test.js.

const test = require('node:test')
const assert = require('node:assert/strict')
const { createPool } = require('../..')
const { uniqueName, waitFor } = require('../helpers/db')
const fake = require('../helpers/fake-server')

const INT4 = 23
const LIMIT = { timeout: 60000 }

/** A NoticeResponse with `{ S, C, M, ... }` fields (ErrorResponse's layout, tag 'N'). */
function noticeResponse(fields) {
  const parts = Object.entries(fields).map(([k, v]) => Buffer.concat([Buffer.from(k), fake.cstring(v)]))
  return fake.message('N', ...parts, Buffer.from([0]))
}

const selectOne = () => [fake.rowDescription([{ name: 'n', oid: INT4 }]), fake.dataRow(['1']), fake.commandComplete('SELECT 1'), fake.readyForQuery()]

async function setup(t, replies) {
  const server = await fake.startFakeServer({
    onRequest: (req) => {
      if (req.kind === 'simple' && req.sql.trim() === '') return [fake.emptyQueryResponse(), fake.readyForQuery()]
      if (replies[req.sql]) return replies[req.sql]()
      return selectOne()
    },
  })
  const pool = createPool({ connectionString: server.url, name: uniqueName('notices'), max: 1 })
  t.after(async () => {
    await pool.end({ timeoutMs: 2000 })
    await server.close()
  })
  return { server, pool }
}

test('a flood of notices for one request: the client gets the first MiB of them, and the result', LIMIT, async (t) => {
  const padding = 'x'.repeat(1000)
  const total = 5000
  const { pool } = await setup(t, {
    'select flood': () => [...Array.from({ length: total }, (_, i) => noticeResponse({ S: 'NOTICE', V: 'NOTICE', C: '00000', M: `${i} ${padding}` })), ...selectOne()],
  })
  const client = await pool.connect()
  const heard = []
  client.on('notice', (n) => heard.push(Number(n.message.split(' ')[0])))
  const r = await client.query('select flood')
  client.release()
  assert.deepEqual(r.rows, [{ n: 1 }])
  // Each notice is about 1 KB: about a thousand fit in 1 MiB, in the order sent, from the first.
  assert.ok(heard.length > 900 && heard.length < 1100, `${heard.length} notices`)
  assert.deepEqual(heard, Array.from({ length: heard.length }, (_, i) => i))
  // The connection was not harmed: the next request gets only its own (no leftovers).
  const again = await pool.connect()
  const after = []
  again.on('notice', (n) => after.push(n.message))
  await again.query('select 1 as n')
  again.release()
  assert.deepEqual(after, [])
})

test('a malformed NoticeResponse is PROTOCOL_ERROR and closes that connection; the pool goes on', LIMIT, async (t) => {
  const { server, pool } = await setup(t, {
    // A field without its terminating NUL: the body ends inside the value.
    'select broken': () => [fake.message('N', Buffer.from('Mno terminator')), ...selectOne()],
  })
  const client = await pool.connect()
  const e = await client.query('select broken').catch((err) => err)
  client.release()
  assert.equal(e.code, 'PROTOCOL_ERROR', `${e.code}: ${e.message}`)
  assert.match(e.message, /NoticeResponse/)
  await waitFor(() => pool.stats().size === 0 && server.sockets === 0)
  assert.equal(pool.stats().size, 0)
  assert.deepEqual((await pool.query('select 1 as n')).rows, [{ n: 1 }])
})
