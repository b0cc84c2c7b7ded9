'use strict'
// A hostile PostgreSQL server for fault tests: a loopback `net` server that speaks just enough of
// the wire protocol to get a client past startup (AuthenticationOk, BackendKeyData,
// ReadyForQuery), then answers each request with bytes the test scripts, lies included. Nothing
// here is a database: a test decides every byte the client reads.
//
//   const server = await startFakeServer({ onRequest: (req, socket) => bytes })
//   createPool({ connectionString: server.url })
//
// `onRequest` is called once per request: a simple Query ({ kind: 'simple', sql }) or an
// extended-protocol batch up to its Sync ({ kind: 'extended', sql, statement, tags }, `sql` only
// when the batch has a Parse). It returns the bytes to send (a Buffer or an array of Buffers), or
// writes to `socket` itself and returns nothing. `startup(socket)` and `sslAnswer` replace the
// server's side of the startup and of the SSLRequest. Only 127.0.0.1 is ever used.

const net = require('node:net')

const PROTOCOL_3 = 196608
const SSL_REQUEST = 80877103
const CANCEL_REQUEST = 80877102

/** A backend message: tag, i32 length (itself included), body. */
function message(tag, ...parts) {
  const body = Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)))
  const head = Buffer.alloc(5)
  head.write(tag, 0, 'latin1')
  head.writeInt32BE(body.length + 4, 1)
  return Buffer.concat([head, body])
}

const int16 = (n) => {
  const b = Buffer.alloc(2)
  b.writeInt16BE(n)
  return b
}
const int32 = (n) => {
  const b = Buffer.alloc(4)
  b.writeInt32BE(n)
  return b
}
const cstring = (s) => Buffer.from(`${s}\0`)

const authenticationOk = () => message('R', int32(0))
const backendKeyData = (pid = 4242, key = 17) => message('K', int32(pid), int32(key))
const parameterStatus = (name, value) => message('S', cstring(name), cstring(value))
const readyForQuery = (status = 'I') => message('Z', status)
const parseComplete = () => message('1')
const bindComplete = () => message('2')
const noData = () => message('n')
const emptyQueryResponse = () => message('I')
const commandComplete = (tag) => message('C', cstring(tag))
const parameterDescription = (oids = []) => message('t', int16(oids.length), ...oids.map(int32))

/** RowDescription for `[{ name, oid }]` (text format). */
function rowDescription(fields) {
  const parts = [int16(fields.length)]
  for (const f of fields) {
    const meta = Buffer.alloc(18)
    meta.writeInt32BE(0, 0) // table oid
    meta.writeInt16BE(0, 4) // column number
    meta.writeInt32BE(f.oid, 6)
    meta.writeInt16BE(-1, 10) // type size
    meta.writeInt32BE(-1, 12) // type modifier
    meta.writeInt16BE(0, 16) // text format
    parts.push(cstring(f.name), meta)
  }
  return message('T', ...parts)
}

/** DataRow of text cells (`null` for NULL), each with its true length. */
function dataRow(cells) {
  const parts = [int16(cells.length)]
  for (const c of cells) {
    if (c === null) parts.push(int32(-1))
    else {
      const bytes = Buffer.from(c)
      parts.push(int32(bytes.length), bytes)
    }
  }
  return message('D', ...parts)
}

/** ErrorResponse with `{ S, C, M, ... }` fields (single-letter keys), in that order. */
function errorResponse(fields) {
  const parts = Object.entries(fields).map(([k, v]) => Buffer.concat([Buffer.from(k), cstring(v)]))
  return message('E', ...parts, Buffer.from([0]))
}

/** A message header alone: tag and a claimed length, whatever it is. */
function header(tag, length) {
  const b = Buffer.alloc(5)
  b.write(tag, 0, 'latin1')
  b.writeUInt32BE(length >>> 0, 1)
  return b
}

/** What a real server says once the client is in: AuthenticationOk ... ReadyForQuery. */
function welcome() {
  return Buffer.concat([
    authenticationOk(),
    parameterStatus('server_version', '17.0'),
    parameterStatus('client_encoding', 'UTF8'),
    backendKeyData(),
    readyForQuery('I'),
  ])
}

/** The answer to a request, scripted or the default for the pool's own (ping: the empty query). */
function defaultReply(req) {
  if (req.kind === 'simple' && req.sql.trim() === '') return [emptyQueryResponse(), readyForQuery()]
  throw new Error(`fake server: no script for ${JSON.stringify(req)}`)
}

/**
 * Starts the server. Options: `onRequest(req, socket)`, `startup(socket)` (default: welcome()),
 * `sslAnswer` (a Buffer, default 'N'). Resolves with `{ url, port, sockets, requests, close }`:
 * `sockets` is how many client connections are open, `requests` every request seen.
 */
async function startFakeServer(options = {}) {
  const { onRequest = defaultReply, startup = () => welcome(), sslAnswer = Buffer.from('N') } = options
  const open = new Set()
  const requests = []
  const server = net.createServer((socket) => {
    open.add(socket)
    socket.on('close', () => open.delete(socket))
    socket.on('error', () => {})
    let pending = Buffer.alloc(0)
    let started = false
    let batch = null
    const send = (out) => {
      if (out == null || socket.destroyed) return
      socket.write(Array.isArray(out) ? Buffer.concat(out) : out)
    }
    const answer = (req) => {
      requests.push(req)
      send(onRequest(req, socket))
    }
    socket.on('data', (chunk) => {
      pending = Buffer.concat([pending, chunk])
      for (;;) {
        if (!started) {
          // Untagged: i32 length, i32 code.
          if (pending.length < 8) return
          const len = pending.readInt32BE(0)
          if (pending.length < len) return
          const code = pending.readInt32BE(4)
          pending = pending.subarray(len)
          if (code === SSL_REQUEST) send(sslAnswer)
          else if (code === CANCEL_REQUEST) socket.end()
          else if (code === PROTOCOL_3) {
            started = true
            send(startup(socket))
          } else socket.destroy()
          continue
        }
        if (pending.length < 5) return
        const tag = String.fromCharCode(pending[0])
        const len = pending.readInt32BE(1)
        if (pending.length < len + 1) return
        const body = pending.subarray(5, len + 1)
        pending = pending.subarray(len + 1)
        if (tag === 'X') {
          socket.end()
          return
        }
        if (tag === 'Q') {
          answer({ kind: 'simple', sql: body.subarray(0, body.length - 1).toString() })
          continue
        }
        batch ||= { kind: 'extended', sql: undefined, statement: undefined, tags: [] }
        batch.tags.push(tag)
        if (tag === 'P') {
          const nameEnd = body.indexOf(0)
          batch.statement = body.subarray(0, nameEnd).toString()
          batch.sql = body.subarray(nameEnd + 1, body.indexOf(0, nameEnd + 1)).toString()
        } else if (tag === 'B') {
          const portalEnd = body.indexOf(0)
          batch.statement = body.subarray(portalEnd + 1, body.indexOf(0, portalEnd + 1)).toString()
        } else if (tag === 'S') {
          const req = batch
          batch = null
          answer(req)
        }
      }
    })
  })
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const { port } = server.address()
  return {
    port,
    url: `postgres://fake@127.0.0.1:${port}/fake?sslmode=disable`,
    requests,
    get sockets() {
      return open.size
    },
    close() {
      for (const s of open) s.destroy()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}

module.exports = {
  startFakeServer,
  message,
  header,
  int16,
  int32,
  cstring,
  welcome,
  authenticationOk,
  backendKeyData,
  parameterStatus,
  readyForQuery,
  parseComplete,
  bindComplete,
  noData,
  emptyQueryResponse,
  commandComplete,
  parameterDescription,
  rowDescription,
  dataRow,
  errorResponse,
}
