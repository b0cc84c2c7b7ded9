'use strict'
// The WebAssembly build's sockets. WASI cannot open a socket, so JavaScript does (node:net, and
// node:tls once the server has agreed to TLS) and the Rust core reads and writes them through
// the binding (src/conn/transport/js.rs). Rust queues operations and wakes us once per batch;
// we push what the sockets receive and report. One registry per binding instance, pinned with
// it (lib/native.js): module re-evaluation must reach the same sockets.

const net = require('node:net')
const os = require('node:os')

// Operations from Rust (src/napi/transport.rs) and events back to it.
const OP_OPEN = 0
const OP_WRITE = 1
const OP_END = 2
const OP_DESTROY = 3
const OP_START_TLS = 4
const OP_RESUME = 5
const EV_CONNECTED = 0
const EV_SECURE = 1
const EV_FLUSHED = 2
const EV_END = 3
const EV_ERROR = 4

// After the goodbye message the server closes the socket; this bounds a server that does not.
const END_GRACE_MS = 5000

const REGISTRY = Symbol.for('onepool.transport')

/** The socket registry of this binding instance, created on first use. */
function transportFor(binding) {
  if (!binding[REGISTRY]) {
    Object.defineProperty(binding, REGISTRY, { value: createTransport(binding), enumerable: false })
  }
  return binding[REGISTRY]
}

function createTransport(binding) {
  /** id → { sock, written } */
  const sockets = new Map()
  // Received bytes go through this view of wasm memory (see transportInbox in Rust).
  const inbox = binding.transportInbox()

  function listen(id, entry) {
    const { sock } = entry
    sock.on('data', (chunk) => {
      let keepReading = true
      for (let at = 0; at < chunk.length; at += inbox.length) {
        const n = Math.min(inbox.length, chunk.length - at)
        inbox.set(at === 0 && n === chunk.length ? chunk : chunk.subarray(at, at + n))
        keepReading = binding.transportData(id, n)
      }
      if (!keepReading) sock.pause()
    })
    sock.on('end', () => binding.transportEvent(id, EV_END))
    sock.on('error', (e) => binding.transportEvent(id, EV_ERROR, null, e.code || 'EIO', e.message))
    sock.on('close', () => {
      if (sockets.get(id) === entry) sockets.delete(id)
      binding.transportEvent(id, EV_END)
    })
  }

  function open(id, kind, address, port, keepalive) {
    const sock = kind === 'unix' ? net.connect({ path: address }) : net.connect({ host: address, port })
    const entry = { sock, written: 0 }
    sockets.set(id, entry)
    // Like the native build's sockets, an idle connection never holds the process open; a
    // pending query does, through the dispatcher.
    sock.unref()
    sock.setNoDelay(true)
    if (keepalive) sock.setKeepAlive(true, 60000)
    sock.once('connect', () => binding.transportEvent(id, EV_CONNECTED))
    listen(id, entry)
  }

  // libpq's sslmode: require (and prefer) encrypt without verifying, verify-ca checks the chain,
  // verify-full also the host name (as libpq matches it); `ca` replaces Node's default CAs. A
  // self-signed server certificate given as `ca` (the PostgreSQL docs' recipe) is accepted by
  // OpenSSL as is, as by libpq. `cert` and `key`: the client certificate chain and its key, PEM,
  // the key already decrypted by the core (src/config/client_cert.rs), so both builds read the
  // same key formats. `alpn`: offer ALPN "postgresql" (sslnegotiation=direct).
  function startTls(id, mode, host, ca, cert, key, alpn) {
    const entry = sockets.get(id)
    if (!entry) return
    const raw = entry.sock
    raw.removeAllListeners('data')
    raw.removeAllListeners('end')
    raw.removeAllListeners('error')
    raw.removeAllListeners('close')
    const options = {
      socket: raw,
      host,
      servername: net.isIP(host) ? undefined : host,
      rejectUnauthorized: mode === 'verify-ca' || mode === 'verify-full',
    }
    if (ca != null) options.ca = ca
    if (cert != null) options.cert = cert
    if (key != null) options.key = key
    if (alpn) options.ALPNProtocols = ['postgresql']
    const tls = require('node:tls')
    if (mode === 'verify-ca') options.checkServerIdentity = () => undefined
    if (mode === 'verify-full') options.checkServerIdentity = (name, cert) => libpqServerIdentity(tls, name, cert)
    let sock
    try {
      sock = tls.connect(options)
    } catch (e) {
      binding.transportEvent(id, EV_ERROR, null, e.code || 'ERR_TLS', e.message)
      raw.destroy()
      return
    }
    entry.sock = sock
    // The server's certificate (DER) for SCRAM channel binding, and the protocol it selected.
    sock.once('secureConnect', () => {
      const serverCert = sock.getPeerX509Certificate()?.raw ?? null
      binding.transportEvent(id, EV_SECURE, null, null, null, serverCert, sock.alpnProtocol || null)
    })
    listen(id, entry)
  }

  function write(id, buf, ack) {
    const entry = sockets.get(id)
    if (!entry) return
    entry.written += buf.length
    if (ack) {
      const total = entry.written
      entry.sock.write(buf, () => binding.transportEvent(id, EV_FLUSHED, total))
    } else {
      entry.sock.write(buf)
    }
  }

  function run() {
    const ops = binding.takeTransportOps()
    let i = 0
    while (i < ops.length) {
      const op = ops[i]
      const id = ops[i + 1]
      switch (op) {
        case OP_OPEN:
          open(id, ops[i + 2], ops[i + 3], ops[i + 4], ops[i + 5])
          i += 6
          break
        case OP_WRITE:
          write(id, ops[i + 2], ops[i + 3])
          i += 4
          break
        case OP_START_TLS:
          startTls(id, ops[i + 2], ops[i + 3], ops[i + 4], ops[i + 5], ops[i + 6], ops[i + 7])
          i += 8
          break
        case OP_END: {
          const entry = sockets.get(id)
          if (entry) {
            entry.sock.end()
            setTimeout(() => entry.sock.destroy(), END_GRACE_MS).unref()
          }
          i += 2
          break
        }
        case OP_DESTROY: {
          const entry = sockets.get(id)
          if (entry) {
            sockets.delete(id)
            entry.sock.destroy()
          }
          i += 2
          break
        }
        case OP_RESUME:
          sockets.get(id)?.sock.resume()
          i += 2
          break
        default:
          throw new Error(`onepool: unknown transport operation ${op}`)
      }
    }
  }

  binding.initTransport(run, process.pid, os.hostname())
  return { sockets }
}

/**
 * Node's host name check, plus the one case where libpq accepts more: for an IP address, libpq
 * falls back to the subject's common name when the certificate has no IP address among its
 * subjectAltNames (Node does that for DNS names only).
 */
function libpqServerIdentity(tls, host, cert) {
  const byCommonName = net.isIP(host) && !(cert.subjectaltname || '').split(', ').some((n) => n.startsWith('IP Address:'))
  // libpq reads the first common name.
  const cn = [].concat(cert.subject?.CN ?? [])[0]
  if (byCommonName && typeof cn === 'string' && sameAddress(cn, host)) return undefined
  const mismatch = tls.checkServerIdentity(host, cert)
  // Node's message lists only the certificate's IP addresses: say what it was for.
  if (mismatch && byCommonName && typeof cn === 'string') mismatch.message = `${mismatch.message.trimEnd()} (its common name is "${cn}")`
  return mismatch
}

/** Whether two IP address strings are the same address (`::1` and `0:0::1` are). */
function sameAddress(a, b) {
  const family = net.isIP(a)
  if (family === 0 || family !== net.isIP(b)) return false
  const list = new net.BlockList()
  list.addAddress(a, family === 6 ? 'ipv6' : 'ipv4')
  return list.check(b, family === 6 ? 'ipv6' : 'ipv4')
}

module.exports = { transportFor }
