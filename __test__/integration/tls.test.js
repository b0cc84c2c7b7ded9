'use strict'
// TLS against a real Postgres: sslmode semantics as libpq's, SCRAM over TLS, with a throwaway CA
// and with the PostgreSQL docs' self-signed server certificate (its own root).

const test = require('node:test')
const { describe } = test
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { createPool } = require('../..')
const { startServer, SUPERUSER, PASSWORD } = require('../../scripts/embedded-server')
const { makeCerts, makeSelfSigned, serveCertificate } = require('../helpers/certs')
const { TEST_URL, uniqueName } = require('../helpers/db')

let server
let certs

test.before(async () => {
  certs = makeCerts()
  server = await startServer({ flags: ['-c', 'ssl=on', '-c', `ssl_cert_file=${certs.cert}`, '-c', `ssl_key_file=${certs.key}`] })
})

test.after(async () => {
  await server.stop()
  certs.cleanup()
})

const url = (host, params) => `postgres://${SUPERUSER}:${PASSWORD}@${host}:${server.port}/postgres?${params}`
const usesTls = "select ssl from pg_stat_ssl where pid = pg_backend_pid()"

async function tryPool(connectionString, extra = {}) {
  const pool = createPool({ connectionString, name: uniqueName(), max: 1, ...extra })
  try {
    return (await pool.query(usesTls)).rows[0].ssl
  } finally {
    await pool.end()
  }
}

test('sslmode=require encrypts without verifying, with SCRAM auth', async () => {
  assert.equal(await tryPool(url('127.0.0.1', 'sslmode=require')), true)
})

test('sslmode=verify-full with sslrootcert works for the right host name', async () => {
  assert.equal(await tryPool(url('localhost', `sslmode=verify-full&sslrootcert=${encodeURIComponent(certs.ca)}`)), true)
})

test('sslmode=verify-full rejects a wrong host name', async () => {
  await assert.rejects(tryPool(url('127.0.0.1', `sslmode=verify-full&sslrootcert=${encodeURIComponent(certs.ca)}`)), (e) => {
    assert.equal(e.code, 'CONNECT_FAILED')
    assert.equal(e.cause.code, 'ERR_TLS_CERT_ALTNAME_INVALID')
    assert.doesNotMatch(e.message, new RegExp(PASSWORD))
    return true
  })
})

test('sslmode=verify-ca checks the chain but not the host name', async () => {
  assert.equal(await tryPool(url('127.0.0.1', `sslmode=verify-ca&sslrootcert=${encodeURIComponent(certs.ca)}`)), true)
})

test('verify-full without the CA rejects the self-signed chain', async () => {
  await assert.rejects(tryPool(url('localhost', 'sslmode=verify-full')), (e) => {
    assert.equal(e.code, 'CONNECT_FAILED')
    assert.equal(e.cause.code, 'SELF_SIGNED_CERT_IN_CHAIN')
    return true
  })
})

test("node-postgres's ssl option: { ca } verifies, rejectUnauthorized: false only encrypts", async () => {
  const base = `postgres://${SUPERUSER}:${PASSWORD}@localhost:${server.port}/postgres`
  assert.equal(await tryPool(base, { ssl: { ca: fs.readFileSync(certs.ca) } }), true)
  assert.equal(await tryPool(base.replace('localhost', '127.0.0.1'), { ssl: { rejectUnauthorized: false } }), true)
})

test('a server without TLS: require fails with SSL_NOT_SUPPORTED, prefer falls back to plaintext', async () => {
  const plain = new URL(TEST_URL)
  plain.searchParams.set('sslmode', 'require')
  await assert.rejects(tryPool(plain.toString()), (e) => e.code === 'CONNECT_FAILED' && e.cause.code === 'SSL_NOT_SUPPORTED')
  plain.searchParams.set('sslmode', 'prefer')
  assert.equal(await tryPool(plain.toString()), false)
})

test('an unreadable sslrootcert is CONFIG_INVALID at createPool', () => {
  assert.throws(() => createPool(url('localhost', 'sslmode=verify-full&sslrootcert=/nonexistent/ca.pem')), (e) => e.code === 'CONFIG_INVALID')
})

// What libpq (psql) accepts, both builds accept. The docs' recipe (`openssl req -new -x509 ...
// -subj "/CN=localhost"`, then `sslrootcert=server.crt`) makes a CA certificate that is its own
// root, with the host name only in its common name. The checks libpq keeps (another certificate,
// a wrong host name, an expired one) still fail.
describe("certificates libpq accepts: the PostgreSQL docs' self-signed one, a host name in the common name", () => {
  let docs
  let recipe
  let other
  let expired
  let forIp
  let commonNameOnly

  test.before(async () => {
    recipe = makeSelfSigned()
    other = makeSelfSigned()
    expired = makeSelfSigned({ expired: true })
    forIp = makeSelfSigned({ cn: '127.0.0.1' })
    commonNameOnly = makeCerts({ subjectAltName: false })
    // Without TLS flags: each test picks the certificate the server presents (see serve).
    docs = await startServer()
  })

  test.after(async () => {
    await docs.stop()
    for (const c of [recipe, other, expired, forIp, commonNameOnly]) c.cleanup()
  })

  const serve = (certs) => serveCertificate(docs, certs)

  const docsUrl = (host, mode, rootcert) =>
    `postgres://${SUPERUSER}:${PASSWORD}@${host}:${docs.port}/postgres?sslmode=${mode}&sslrootcert=${encodeURIComponent(rootcert)}`

  async function selectOne(connectionString, extra = {}) {
    const pool = createPool({ connectionString, name: uniqueName(), max: 1, ...extra })
    try {
      return (await pool.query('select 1 as one, ssl from pg_stat_ssl where pid = pg_backend_pid()')).rows[0]
    } finally {
      await pool.end()
    }
  }

  async function rejected(connectionString, code, reason) {
    await assert.rejects(selectOne(connectionString), (e) => {
      assert.equal(e.code, 'CONNECT_FAILED')
      assert.equal(e.cause.code, code, e.message)
      assert.match(e.message, reason)
      assert.doesNotMatch(e.message, new RegExp(PASSWORD))
      return true
    })
  }

  test("the docs' self-signed certificate passes verify-full for the host name in its common name", async () => {
    await serve(recipe)
    assert.deepEqual(await selectOne(docsUrl('localhost', 'verify-full', recipe.cert)), { one: 1, ssl: true })
  })

  test("the docs' self-signed certificate passes verify-ca, which as in libpq does not check the host name", async () => {
    await serve(recipe)
    assert.deepEqual(await selectOne(docsUrl('localhost', 'verify-ca', recipe.cert)), { one: 1, ssl: true })
    assert.deepEqual(await selectOne(docsUrl('127.0.0.1', 'verify-ca', recipe.cert)), { one: 1, ssl: true })
  })

  test("the docs' self-signed certificate fails verify-full for a host name that is not its common name", async () => {
    await serve(recipe)
    await rejected(docsUrl('127.0.0.1', 'verify-full', recipe.cert), 'ERR_TLS_CERT_ALTNAME_INVALID', /127\.0\.0\.1/)
  })

  test('another self-signed certificate as sslrootcert is rejected under verify-full and verify-ca', async () => {
    await serve(recipe)
    for (const mode of ['verify-full', 'verify-ca']) {
      await rejected(docsUrl('localhost', mode, other.cert), 'SELF_SIGNED_CERT_IN_CHAIN', /certificate|UnknownIssuer/i)
    }
  })

  test("the docs' self-signed certificate is recognised among others in sslrootcert, and as node-postgres ssl.ca", async () => {
    await serve(recipe)
    const bundle = path.join(other.dir, 'bundle.crt')
    fs.writeFileSync(bundle, fs.readFileSync(other.cert, 'utf8') + fs.readFileSync(recipe.cert, 'utf8'))
    assert.deepEqual(await selectOne(docsUrl('localhost', 'verify-full', bundle)), { one: 1, ssl: true })
    const plainUrl = `postgres://${SUPERUSER}:${PASSWORD}@localhost:${docs.port}/postgres`
    assert.deepEqual(await selectOne(plainUrl, { ssl: { ca: fs.readFileSync(recipe.cert) } }), { one: 1, ssl: true })
  })

  test('an expired self-signed certificate is rejected under verify-full and verify-ca', async () => {
    await serve(expired)
    for (const mode of ['verify-full', 'verify-ca']) {
      await rejected(docsUrl('localhost', mode, expired.cert), 'CERT_HAS_EXPIRED', /expired/i)
    }
  })

  test('a self-signed common name that is an IP address matches that address under verify-full, as in libpq', async () => {
    await serve(forIp)
    assert.deepEqual(await selectOne(docsUrl('127.0.0.1', 'verify-full', forIp.cert)), { one: 1, ssl: true })
    await rejected(docsUrl('localhost', 'verify-full', forIp.cert), 'ERR_TLS_CERT_ALTNAME_INVALID', /localhost/)
  })

  test('a CA-issued certificate naming its host in the common name only passes verify-full, as in libpq', async () => {
    await serve(commonNameOnly)
    assert.deepEqual(await selectOne(docsUrl('localhost', 'verify-full', commonNameOnly.ca)), { one: 1, ssl: true })
    await rejected(docsUrl('127.0.0.1', 'verify-full', commonNameOnly.ca), 'ERR_TLS_CERT_ALTNAME_INVALID', /127\.0\.0\.1/)
  })
})
