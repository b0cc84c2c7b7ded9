'use strict'
// Client certificates against a real Postgres that asks for them: `hostssl ... cert` (the
// certificate is the authentication) and `scram-sha-256 clientcert=verify-full` (a password and
// a certificate naming the user), with the server's ssl_ca_file trusting a throwaway client CA.
// The keys come in every form libpq reads (clear, encrypted PKCS#8, OpenSSL's traditional
// encryption); what the server saw is read back from pg_stat_ssl.client_dn.

const test = require('node:test')
const { describe } = test
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const pg = require('pg')
const { createPool } = require('../..')
const { startServer, SUPERUSER, PASSWORD } = require('../../scripts/embedded-server')
const { makeCerts, makeClientCa, convertKey } = require('../helpers/certs')
const { uniqueName } = require('../helpers/db')
const { firstRow, rejectsConnect } = require('../helpers/connect')

const PASSPHRASE = 'Key-Passphrase-7f3a'
const BOTH_PASSWORD = 'both-password-91c2'

let server
let serverCerts
let clientCa
let foreignCa
let certUser
let bothUser

test.before(async () => {
  serverCerts = makeCerts()
  clientCa = makeClientCa()
  foreignCa = makeClientCa('another CA')
  certUser = clientCa.issue({ cn: 'certuser' })
  bothUser = clientCa.issue({ cn: 'bothuser' })
  // The first matching line wins: certificate users first, then everyone by password.
  const hba = path.join(serverCerts.dir, 'pg_hba.conf')
  fs.writeFileSync(hba, [
    'hostssl all certuser 127.0.0.1/32 cert',
    'hostssl all bothuser 127.0.0.1/32 scram-sha-256 clientcert=verify-full',
    'host all all 127.0.0.1/32 scram-sha-256',
    '',
  ].join('\n'))
  server = await startServer({
    flags: ['-c', 'ssl=on', '-c', `ssl_cert_file=${serverCerts.cert}`, '-c', `ssl_key_file=${serverCerts.key}`,
      '-c', `ssl_ca_file=${clientCa.cert}`, '-c', `hba_file=${hba}`],
  })
  const admin = new pg.Client({ connectionString: server.superuserUrl })
  await admin.connect()
  try {
    await admin.query('create role certuser login')
    await admin.query(`create role bothuser login password '${BOTH_PASSWORD}'`)
  } finally {
    await admin.end()
  }
})

test.after(async () => {
  await server.stop()
  for (const c of [serverCerts, clientCa, foreignCa]) c.cleanup()
})

const WHO = 'select current_user as user, ssl, client_dn from pg_stat_ssl where pid = pg_backend_pid()'

/** A URL for `user` with verify-full against the test CA and the given extra parameters. */
function url(user, params = {}, password) {
  const u = new URL(`postgres://${user}@localhost:${server.port}/postgres`)
  if (password) u.password = password
  u.searchParams.set('sslmode', 'verify-full')
  u.searchParams.set('sslrootcert', serverCerts.ca)
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v)
  return u.toString()
}

const who = (options) => firstRow(options, WHO)
const connectFails = (options, causeCode, reason) => rejectsConnect(who(options), causeCode, reason, [PASSPHRASE])

describe('a server that authenticates by certificate (hostssl cert)', () => {
  test('sslcert and sslkey in the URL: the server takes the certificate as the user', async () => {
    const row = await who({ connectionString: url('certuser', { sslcert: certUser.cert, sslkey: certUser.key }) })
    assert.deepEqual(row, { user: 'certuser', ssl: true, client_dn: '/CN=certuser' })
  })

  test("node-postgres's ssl: { ca, cert, key } as Buffers, and as strings", async () => {
    const base = `postgres://certuser@localhost:${server.port}/postgres`
    const buffers = { ca: fs.readFileSync(serverCerts.ca), cert: fs.readFileSync(certUser.cert), key: fs.readFileSync(certUser.key) }
    assert.deepEqual(await who({ connectionString: base, ssl: buffers }), { user: 'certuser', ssl: true, client_dn: '/CN=certuser' })
    const strings = Object.fromEntries(Object.entries(buffers).map(([k, v]) => [k, v.toString()]))
    assert.deepEqual(await who({ connectionString: base, ssl: strings }), { user: 'certuser', ssl: true, client_dn: '/CN=certuser' })
  })

  test('every key form libpq reads, clear or decrypted with sslpassword / ssl.passphrase', async () => {
    const ec256 = clientCa.issue({ cn: 'certuser', algorithm: 'EC:P-256' })
    const ec384 = clientCa.issue({ cn: 'certuser', algorithm: 'EC:P-384' })
    const ed25519 = clientCa.issue({ cn: 'certuser', algorithm: 'ED25519' })
    const cases = [
      ['RSA PKCS#8', certUser.cert, certUser.key],
      ['RSA PKCS#1', certUser.cert, convertKey(certUser.key, 'pkcs1')],
      ['RSA encrypted PKCS#8, AES-256-CBC', certUser.cert, convertKey(certUser.key, 'pkcs8-aes256', PASSPHRASE), PASSPHRASE],
      ['RSA encrypted PKCS#8, scrypt', certUser.cert, convertKey(certUser.key, 'pkcs8-scrypt', PASSPHRASE), PASSPHRASE],
      ['RSA encrypted PKCS#8, DES-EDE3-CBC and HMAC-SHA-1', certUser.cert, convertKey(certUser.key, 'pkcs8-des3', PASSPHRASE), PASSPHRASE],
      ['RSA traditional AES-256-CBC', certUser.cert, convertKey(certUser.key, 'traditional-aes256', PASSPHRASE), PASSPHRASE],
      ['RSA traditional AES-128-CBC', certUser.cert, convertKey(certUser.key, 'traditional-aes128', PASSPHRASE), PASSPHRASE],
      ['RSA traditional DES-EDE3-CBC', certUser.cert, convertKey(certUser.key, 'traditional-des3', PASSPHRASE), PASSPHRASE],
      ['ECDSA P-256 PKCS#8', ec256.cert, ec256.key],
      ['ECDSA P-256 SEC1', ec256.cert, convertKey(ec256.key, 'sec1')],
      ['ECDSA P-256 traditional AES-256-CBC', ec256.cert, convertKey(ec256.key, 'traditional-aes256', PASSPHRASE), PASSPHRASE],
      ['ECDSA P-384 encrypted PKCS#8', ec384.cert, convertKey(ec384.key, 'pkcs8-aes256', PASSPHRASE), PASSPHRASE],
      ['Ed25519 PKCS#8', ed25519.cert, ed25519.key],
    ]
    const seen = []
    for (const [form, cert, key, passphrase] of cases) {
      const params = { sslcert: cert, sslkey: key, ...(passphrase ? { sslpassword: passphrase } : {}) }
      const row = await who({ connectionString: url('certuser', params) })
      seen.push([form, row.client_dn])
    }
    assert.deepEqual(seen, cases.map(([form]) => [form, '/CN=certuser']))
  })

  test('no client certificate: the server refuses with its own error (28000)', async () => {
    await connectFails({ connectionString: url('certuser') }, '28000', /connection requires a valid client certificate/)
  })

  // Under TLS 1.3 the server checks the certificate after the client finished its handshake and
  // sent its startup message; it sends an alert and hangs up, and its kernel's reset (for the
  // unread startup message) can overtake the alert. libpq's own tests accept both outcomes too.
  test('a certificate the server does not trust: the TLS alert, named, or the hang-up, explained', async () => {
    const foreign = foreignCa.issue({ cn: 'certuser' })
    await assert.rejects(who({ connectionString: url('certuser', { sslcert: foreign.cert, sslkey: foreign.key }) }), (e) => {
      assert.equal(e.code, 'CONNECT_FAILED', e.message)
      if (e.cause.code === 'ECONNRESET') {
        assert.match(e.message, /closed the connection right after the TLS handshake: it may have refused the client certificate/)
      } else {
        assert.equal(e.cause.code, 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', e.message)
        assert.match(e.message, /the server refused the client certificate: it is not issued by a CA the server trusts/)
      }
      return true
    })
  })

  test("another user's certificate: the server's error (28000)", async () => {
    await connectFails(
      { connectionString: url('certuser', { sslcert: bothUser.cert, sslkey: bothUser.key }) },
      '28000',
      /certificate authentication failed for user "certuser"/,
    )
  })

  test('a certificate with a key that is not its own', async () => {
    await connectFails(
      { connectionString: url('certuser', { sslcert: certUser.cert, sslkey: bothUser.key }) },
      'ERR_OSSL_X509_KEY_VALUES_MISMATCH',
      /the client certificate and its private key do not match/,
    )
  })
})

describe('a server that wants a password and a certificate (clientcert=verify-full)', () => {
  test('the right certificate and password', async () => {
    const row = await who({ connectionString: url('bothuser', { sslcert: bothUser.cert, sslkey: bothUser.key }, BOTH_PASSWORD) })
    assert.deepEqual(row, { user: 'bothuser', ssl: true, client_dn: '/CN=bothuser' })
  })

  test('the password without a certificate, and with a certificate for another user: refused by the server', async () => {
    await connectFails({ connectionString: url('bothuser', {}, BOTH_PASSWORD) }, '28000', /connection requires a valid client certificate/)
    // The server logs "certificate validation (clientcert=verify-full) failed" and tells the
    // client only that authentication failed.
    await connectFails(
      { connectionString: url('bothuser', { sslcert: certUser.cert, sslkey: certUser.key }, BOTH_PASSWORD) },
      '28P01',
      /password authentication failed for user "bothuser"/,
    )
  })
})

describe('keys and passphrases are checked at createPool, and never shown', () => {
  const base = () => `postgres://certuser@localhost:${server.port}/postgres`
  const invalid = (options, reason) =>
    assert.throws(() => createPool({ name: uniqueName(), ...options }), (e) => {
      assert.equal(e.code, 'CONFIG_INVALID')
      assert.match(e.message, reason)
      assert.doesNotMatch(e.message, new RegExp(PASSPHRASE))
      assert.doesNotMatch(e.message, /wrong-Passphrase/)
      return true
    })

  test('a wrong passphrase, for each kind of encryption', () => {
    for (const form of ['pkcs8-aes256', 'pkcs8-scrypt', 'traditional-aes256', 'traditional-des3']) {
      const key = convertKey(certUser.key, form, PASSPHRASE)
      invalid({ connectionString: url('certuser', { sslcert: certUser.cert, sslkey: key, sslpassword: 'wrong-Passphrase' }) }, /could not be decrypted: wrong passphrase/)
      invalid({ connectionString: base(), ssl: { cert: fs.readFileSync(certUser.cert), key: fs.readFileSync(key), passphrase: 'wrong-Passphrase' } }, /^ssl\.key could not be decrypted: wrong passphrase/)
    }
  })

  test('an encrypted key without a passphrase says how to give one', () => {
    const key = convertKey(certUser.key, 'pkcs8-aes256', PASSPHRASE)
    invalid({ connectionString: url('certuser', { sslcert: certUser.cert, sslkey: key }) }, /is encrypted: give its passphrase as sslpassword/)
  })

  test('what onepool does not read is refused, saying what to do', () => {
    const pbe = convertKey(certUser.key, 'pkcs12-pbe', PASSPHRASE)
    invalid({ connectionString: url('certuser', { sslcert: certUser.cert, sslkey: pbe, sslpassword: PASSPHRASE }) }, /does not decrypt .*openssl pkcs8 -topk8 -v2 aes-256-cbc/)
    const p521 = clientCa.issue({ cn: 'certuser', algorithm: 'EC:P-521' })
    invalid({ connectionString: url('certuser', { sslcert: p521.cert, sslkey: p521.key }) }, /EC key on curve .* which onepool cannot sign with/)
    invalid({ connectionString: url('certuser', { sslcert: certUser.cert, sslkey: certUser.cert }) }, /holds no private key/)
    invalid({ connectionString: url('certuser', { sslcert: certUser.key, sslkey: certUser.key }) }, /holds no certificate/)
    invalid({ connectionString: url('certuser', { sslcert: '/nonexistent/client.crt', sslkey: certUser.key }) }, /sslcert \/nonexistent\/client\.crt cannot be read/)
    invalid({ connectionString: base(), ssl: { pfx: Buffer.from('x') } }, /ssl\.pfx.* is not supported/)
  })

  test('a certificate without its key, a key without its certificate, or a certificate without TLS', () => {
    invalid({ connectionString: url('certuser', { sslcert: certUser.cert }) }, /without its private key/)
    invalid({ connectionString: url('certuser', { sslkey: certUser.key }) }, /without its certificate/)
    invalid({ connectionString: url('certuser', { sslmode: 'disable', sslcert: certUser.cert, sslkey: certUser.key }) }, /sent over TLS only, and sslmode is disable/)
  })

  test('sslpassword appears in no error, ssl.key and ssl.passphrase not in pool.options', async () => {
    const key = convertKey(certUser.key, 'pkcs8-aes256', PASSPHRASE)
    const connectionString = url('certuser', { sslcert: certUser.cert, sslkey: key, sslpassword: PASSPHRASE }).replace('/postgres?', '/no_such_db?')
    const pool = createPool({ connectionString, name: uniqueName(), max: 1 })
    try {
      await assert.rejects(pool.query('select 1'), (e) => {
        assert.equal(e.code, 'CONNECT_FAILED')
        assert.equal(e.cause.code, '3D000')
        assert.doesNotMatch(`${e.message} ${e.stack} ${JSON.stringify(e)}`, new RegExp(PASSPHRASE))
        return true
      })
      assert.doesNotMatch(JSON.stringify(pool.stats()), new RegExp(PASSPHRASE))
    } finally {
      await pool.end()
    }
    const keyPem = fs.readFileSync(certUser.key, 'utf8')
    const withObject = createPool({ connectionString: `postgres://certuser@localhost:${server.port}/postgres`, name: uniqueName(), ssl: { cert: fs.readFileSync(certUser.cert, 'utf8'), key: keyPem, passphrase: PASSPHRASE } })
    try {
      const shown = JSON.stringify(withObject.options)
      assert.doesNotMatch(shown, new RegExp(PASSPHRASE))
      assert.ok(!shown.includes(keyPem.split('\n')[1]), 'the key is not in pool.options')
      assert.equal(withObject.options.ssl.passphrase, PASSPHRASE, 'still readable by name')
    } finally {
      await withObject.end()
    }
  })
})
