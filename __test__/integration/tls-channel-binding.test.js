'use strict'
// SCRAM channel binding (SCRAM-SHA-256-PLUS, tls-server-end-point) against a real Postgres:
// the server checks the binding, so a connection that authenticates under channel_binding=require
// proves the client hashed the certificate the server presented. A relay that terminates TLS
// with a certificate of its own (a man in the middle sslmode=require lets through) is caught by
// the server unless binding is off. libpq's require rules: no password without SCRAM, no
// authentication without it, no binding without TLS.

const test = require('node:test')
const { describe } = test
const assert = require('node:assert/strict')
const net = require('node:net')
const tls = require('node:tls')
const fs = require('node:fs')
const path = require('node:path')
const pg = require('pg')
const { createPool } = require('../..')
const { startServer, SUPERUSER, PASSWORD } = require('../../scripts/embedded-server')
const { makeCerts, makeSelfSigned, makeServerCert, serveCertificate } = require('../helpers/certs')
const { TEST_URL, uniqueName } = require('../helpers/db')
const { firstRow, rejectsConnect } = require('../helpers/connect')

const MD5_PASSWORD = 'md5-password-5d1e'

let server
let certs

test.before(async () => {
  certs = makeCerts()
  const hba = path.join(certs.dir, 'pg_hba.conf')
  fs.writeFileSync(hba, [
    'host all md5user 127.0.0.1/32 md5',
    'host all trustuser 127.0.0.1/32 trust',
    'host all all 127.0.0.1/32 scram-sha-256',
    '',
  ].join('\n'))
  server = await startServer({ flags: ['-c', 'ssl=on', '-c', `ssl_cert_file=${certs.cert}`, '-c', `ssl_key_file=${certs.key}`, '-c', `hba_file=${hba}`] })
  const admin = new pg.Client({ connectionString: server.superuserUrl })
  await admin.connect()
  try {
    await admin.query("set password_encryption = 'md5'")
    await admin.query(`create role md5user login password '${MD5_PASSWORD}'`)
    await admin.query('create role trustuser login')
  } finally {
    await admin.end()
  }
})

test.after(async () => {
  await server.stop()
  certs.cleanup()
})

const url = (params, user = `${SUPERUSER}:${PASSWORD}`, port = server.port) =>
  `postgres://${user}@127.0.0.1:${port}/postgres?${new URLSearchParams(params)}`

const usesTls = async (options) => (await firstRow(options, 'select ssl from pg_stat_ssl where pid = pg_backend_pid()')).ssl
const connectFails = (options, causeCode, reason) => rejectsConnect(usesTls(options), causeCode, reason, [PASSWORD])

/**
 * A relay that terminates the client's TLS with its own certificate and opens its own TLS to the
 * server, then copies the bytes between them: what a man in the middle does, invisible to
 * sslmode=require. Resolves with its port and a close().
 */
async function startTlsRelay(targetPort, certs) {
  const sockets = new Set()
  const track = (s) => {
    sockets.add(s)
    s.on('error', () => {})
    s.on('close', () => sockets.delete(s))
    return s
  }
  const relay = net.createServer((client) => {
    track(client)
    client.once('data', (sslRequest) => {
      client.write('S')
      const clientSide = track(new tls.TLSSocket(client, { isServer: true, cert: fs.readFileSync(certs.cert), key: fs.readFileSync(certs.key) }))
      const upstream = track(net.connect(targetPort, '127.0.0.1', () => upstream.write(sslRequest)))
      upstream.once('data', () => {
        const serverSide = track(tls.connect({ socket: upstream, rejectUnauthorized: false }))
        serverSide.once('secureConnect', () => {
          clientSide.pipe(serverSide)
          serverSide.pipe(clientSide)
        })
        const closeBoth = () => {
          clientSide.destroy()
          serverSide.destroy()
        }
        clientSide.on('close', closeBoth)
        serverSide.on('close', closeBoth)
      })
    })
  })
  await new Promise((resolve) => relay.listen(0, '127.0.0.1', resolve))
  return {
    port: relay.address().port,
    close: () => {
      for (const s of sockets) s.destroy()
      return new Promise((resolve) => relay.close(resolve))
    },
  }
}

describe('SCRAM-SHA-256-PLUS over TLS', () => {
  test('channel_binding=require authenticates, so the server accepted the certificate hash', async () => {
    assert.equal(await usesTls({ connectionString: url({ sslmode: 'require', channel_binding: 'require' }) }), true)
    assert.equal(await usesTls({ connectionString: url({ sslmode: 'verify-full', sslrootcert: certs.ca }).replace('127.0.0.1', 'localhost'), channelBinding: 'require' }), true)
  })

  test('a TLS-terminating relay with its own certificate is caught by the server, unless binding is off', async () => {
    const intruder = makeSelfSigned()
    const relay = await startTlsRelay(server.port, intruder)
    try {
      const through = (params, extra = {}) => ({ connectionString: url({ sslmode: 'require', ...params }, undefined, relay.port), ...extra })
      // The relay works: without binding nothing notices it.
      assert.equal(await usesTls(through({ channel_binding: 'disable' })), true)
      assert.equal(await usesTls(through({}, { enableChannelBinding: false })), true)
      // With binding (prefer is the default) the server sees the hash of the relay's certificate.
      for (const options of [through({}), through({ channel_binding: 'require' }), through({}, { enableChannelBinding: true })]) {
        await connectFails(options, '28000', /SCRAM channel binding check failed/)
      }
    } finally {
      await relay.close()
      intruder.cleanup()
    }
  })
})

describe("libpq's require rules", () => {
  test('a server that asks for an MD5 password: require refuses it, prefer goes on', async () => {
    const md5 = `md5user:${MD5_PASSWORD}`
    await connectFails({ connectionString: url({ sslmode: 'require', channel_binding: 'require' }, md5) }, 'ECONNECT', /channel binding is required, but the server asked for a password without SCRAM/)
    assert.equal(await usesTls({ connectionString: url({ sslmode: 'require' }, md5) }), true)
  })

  test('a server that lets the client in without SCRAM (trust): require refuses it', async () => {
    await connectFails({ connectionString: url({ sslmode: 'require', channel_binding: 'require' }, 'trustuser') }, 'ECONNECT', /authenticated the client without it/)
    assert.equal(await usesTls({ connectionString: url({ sslmode: 'require' }, 'trustuser') }), true)
  })

  test('no TLS, no binding: require with sslmode=prefer fails on a server without TLS; with sslmode=disable at createPool', async () => {
    const plain = new URL(TEST_URL)
    plain.searchParams.set('sslmode', 'prefer')
    plain.searchParams.set('channel_binding', 'require')
    await connectFails({ connectionString: plain.toString() }, 'ECONNECT', /channel binding is required, but the connection does not use TLS/)
    plain.searchParams.set('channel_binding', 'prefer')
    assert.equal(await usesTls({ connectionString: plain.toString() }), false)
    assert.throws(
      () => createPool({ connectionString: url({ sslmode: 'disable', channel_binding: 'require' }), name: uniqueName() }),
      (e) => e.code === 'CONFIG_INVALID' && /channel_binding=require .* sslmode is disable/.test(e.message),
    )
  })
})

// tls-server-end-point hashes the certificate with the hash of its signature algorithm (SHA-256
// for SHA-1), so each kind of server certificate exercises another path; the server computes its
// own and compares.
describe('the certificate hash follows the signature algorithm', () => {
  let varied

  test.before(async () => {
    varied = await startServer()
  })

  test.after(async () => {
    await varied.stop()
  })

  const kinds = [
    ['RSA, SHA-256', { digest: 'sha256' }],
    ['RSA, SHA-384', { digest: 'sha384' }],
    ['RSA, SHA-512', { digest: 'sha512' }],
    ['RSA, SHA-1 (bound with SHA-256)', { digest: 'sha1' }],
    ['RSASSA-PSS, SHA-256', { pss: true, digest: 'sha256' }],
    ['RSASSA-PSS, SHA-512', { pss: true, digest: 'sha512' }],
    ['ECDSA P-256, SHA-256', { algorithm: 'EC:P-256', digest: 'sha256' }],
    ['ECDSA P-384, SHA-384', { algorithm: 'EC:P-384', digest: 'sha384' }],
  ]

  test('channel_binding=require works with each kind of server certificate', async () => {
    const bound = []
    for (const [kind, options] of kinds) {
      const cert = makeServerCert(options)
      try {
        await serveCertificate(varied, cert)
        bound.push([kind, await usesTls({ connectionString: url({ sslmode: 'require', channel_binding: 'require' }, undefined, varied.port) })])
      } finally {
        cert.cleanup()
      }
    }
    assert.deepEqual(bound, kinds.map(([kind]) => [kind, true]))
  })

  test('an Ed25519 certificate has no end-point hash: prefer authenticates unbound, require says why it cannot', async () => {
    const cert = makeServerCert({ algorithm: 'ED25519' })
    try {
      await serveCertificate(varied, cert)
      assert.equal(await usesTls({ connectionString: url({ sslmode: 'require' }, undefined, varied.port) }), true)
      await connectFails({ connectionString: url({ sslmode: 'require', channel_binding: 'require' }, undefined, varied.port) }, 'ECONNECT', /names no hash function for tls-server-end-point/)
    } finally {
      cert.cleanup()
    }
  })
})
