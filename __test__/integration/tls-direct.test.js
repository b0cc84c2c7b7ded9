'use strict'
// sslnegotiation=direct (PostgreSQL 17): the TLS handshake at once, with ALPN "postgresql", no
// SSLRequest round trip. Against a real PostgreSQL 17 with TLS (with a client certificate and
// channel binding too), against one without TLS, and against TLS servers that are not
// PostgreSQL's. A recording relay shows what the client sent first.

const test = require('node:test')
const assert = require('node:assert/strict')
const net = require('node:net')
const tls = require('node:tls')
const fs = require('node:fs')
const path = require('node:path')
const pg = require('pg')
const { createPool } = require('../..')
const { startServer, SUPERUSER, PASSWORD } = require('../../scripts/embedded-server')
const { makeCerts, makeClientCa } = require('../helpers/certs')
const { TEST_URL, uniqueName } = require('../helpers/db')
const { firstRow, rejectsConnect } = require('../helpers/connect')

let server
let certs
let clientCa

test.before(async () => {
  certs = makeCerts()
  clientCa = makeClientCa()
  const hba = path.join(certs.dir, 'pg_hba.conf')
  fs.writeFileSync(hba, ['hostssl all certuser 127.0.0.1/32 cert', 'host all all 127.0.0.1/32 scram-sha-256', ''].join('\n'))
  server = await startServer({
    flags: ['-c', 'ssl=on', '-c', `ssl_cert_file=${certs.cert}`, '-c', `ssl_key_file=${certs.key}`, '-c', `ssl_ca_file=${clientCa.cert}`, '-c', `hba_file=${hba}`],
  })
  const admin = new pg.Client({ connectionString: server.superuserUrl })
  await admin.connect()
  try {
    await admin.query('create role certuser login')
  } finally {
    await admin.end()
  }
})

test.after(async () => {
  await server.stop()
  certs.cleanup()
  clientCa.cleanup()
})

const url = (params, { user = `${SUPERUSER}:${PASSWORD}`, host = '127.0.0.1', port = server.port } = {}) =>
  `postgres://${user}@${host}:${port}/postgres?${new URLSearchParams(params)}`

const WHO = 'select current_user as user, ssl, client_dn from pg_stat_ssl where pid = pg_backend_pid()'

const who = (options) => firstRow(options, WHO)
const connectFails = (options, causeCode, reason) => rejectsConnect(who(options), causeCode, reason)

/** A plain TCP relay to `port` that keeps the first bytes each client sent. */
async function recordingRelay(port) {
  const firstBytes = []
  const sockets = new Set()
  const relay = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1')
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('error', () => {})
      s.on('close', () => {
        sockets.delete(s)
        client.destroy()
        upstream.destroy()
      })
    }
    client.once('data', (chunk) => firstBytes.push(chunk))
    client.pipe(upstream)
    upstream.pipe(client)
  })
  await new Promise((resolve) => relay.listen(0, '127.0.0.1', resolve))
  return {
    port: relay.address().port,
    firstBytes,
    close: () => {
      for (const s of sockets) s.destroy()
      return new Promise((resolve) => relay.close(resolve))
    },
  }
}

/** A TLS server (not PostgreSQL) that completes handshakes with `alpn` and then says nothing. */
async function tlsServer(alpn) {
  const sockets = new Set()
  const srv = tls.createServer({ cert: fs.readFileSync(certs.cert), key: fs.readFileSync(certs.key), ...(alpn ? { ALPNProtocols: alpn } : {}) }, (s) => {
    sockets.add(s)
    s.on('error', () => {})
  })
  srv.on('tlsClientError', () => {})
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve))
  return {
    port: srv.address().port,
    close: () => {
      for (const s of sockets) s.destroy()
      return new Promise((resolve) => srv.close(resolve))
    },
  }
}

const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])

test('direct TLS starts with the TLS handshake itself; the default starts with an SSLRequest', async () => {
  const relay = await recordingRelay(server.port)
  try {
    const direct = await who({ connectionString: url({ sslmode: 'require', sslnegotiation: 'direct' }, { port: relay.port }) })
    const negotiated = await who({ connectionString: url({ sslmode: 'require' }, { port: relay.port }) })
    assert.deepEqual([direct.ssl, negotiated.ssl], [true, true])
    // 0x16: a TLS handshake record (the ClientHello).
    assert.equal(relay.firstBytes[0][0], 0x16)
    assert.deepEqual(relay.firstBytes[1], SSL_REQUEST)
  } finally {
    await relay.close()
  }
})

test('direct TLS with verify-full, channel binding and a client certificate, as options or URL parameters', async () => {
  const full = { sslmode: 'verify-full', sslrootcert: certs.ca }
  const row = await who({ connectionString: url({ ...full, channel_binding: 'require' }, { host: 'localhost' }), sslNegotiation: 'direct' })
  assert.deepEqual(row, { user: SUPERUSER, ssl: true, client_dn: null })
  const client = clientCa.issue({ cn: 'certuser' })
  const withCert = await who({ connectionString: url({ ...full, sslnegotiation: 'direct', sslcert: client.cert, sslkey: client.key }, { user: 'certuser', host: 'localhost' }) })
  assert.deepEqual(withCert, { user: 'certuser', ssl: true, client_dn: '/CN=certuser' })
})

test('direct TLS needs sslmode require or stronger, as in libpq', () => {
  for (const sslmode of ['disable', 'prefer']) {
    assert.throws(
      () => createPool({ connectionString: url({ sslmode, sslnegotiation: 'direct' }), name: uniqueName() }),
      (e) => e.code === 'CONFIG_INVALID' && /sslnegotiation=direct .* needs sslmode=require, verify-ca or verify-full/.test(e.message),
    )
  }
  assert.throws(() => createPool({ sslNegotiation: 'directly' }), (e) => e.code === 'CONFIG_INVALID' && /"postgres" or "direct"/.test(e.message))
})

test('a server without TLS hangs up on a direct handshake: the error says what direct needs', async () => {
  const plain = new URL(TEST_URL)
  plain.searchParams.set('sslmode', 'require')
  plain.searchParams.set('sslnegotiation', 'direct')
  await connectFails({ connectionString: plain.toString() }, 'ECONNRESET', /closed the connection during the TLS handshake .*sslnegotiation=direct needs PostgreSQL 17 or later with ssl=on/)
})

test('a server that answers the ClientHello with a plaintext error (PgBouncer, PostgreSQL before 17): the error says what direct needs', async () => {
  const sockets = new Set()
  const old = net.createServer((s) => {
    sockets.add(s)
    s.on('error', () => {})
    // What a server that read the ClientHello as a startup packet may send: an ErrorResponse.
    const fields = Buffer.from('SFATAL\0C08P01\0Mbad packet header\0\0')
    const header = Buffer.alloc(5)
    header.write('E')
    header.writeInt32BE(fields.length + 4, 1)
    s.once('data', () => s.end(Buffer.concat([header, fields])))
  })
  await new Promise((resolve) => old.listen(0, '127.0.0.1', resolve))
  try {
    await connectFails({ connectionString: url({ sslmode: 'require', sslnegotiation: 'direct' }, { port: old.address().port }) }, 'ERR_TLS', /TLS handshake failed: .*sslnegotiation=direct needs PostgreSQL 17 or later/)
  } finally {
    for (const s of sockets) s.destroy()
    await new Promise((resolve) => old.close(resolve))
  }
})

test('a TLS server that selects no ALPN protocol, or refuses "postgresql", is not taken for PostgreSQL 17', async () => {
  const silent = await tlsServer(null)
  const http = await tlsServer(['http/1.1'])
  try {
    await connectFails({ connectionString: url({ sslmode: 'require', sslnegotiation: 'direct' }, { port: silent.port }) }, 'EPROTO', /without selecting ALPN "postgresql"/)
    await connectFails({ connectionString: url({ sslmode: 'require', sslnegotiation: 'direct' }, { port: http.port }) }, 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL', /does not speak ALPN "postgresql"/)
  } finally {
    await silent.close()
    await http.close()
  }
})
