'use strict'
// TLS against a real Postgres with a self-signed CA: sslmode semantics as libpq's, SCRAM over TLS.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const { createPool } = require('../..')
const { startServer, SUPERUSER, PASSWORD } = require('../../scripts/embedded-server')
const { makeCerts } = require('../helpers/certs')
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
