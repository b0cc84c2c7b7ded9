'use strict'
// A loopback TCP proxy for fault injection: the pool connects to the proxy, the proxy to the
// server. Its behaviour can be switched at runtime:
//
//   'forward'   bytes flow both ways (the default).
//   'stall'     nothing is forwarded on any connection, old or new: bytes are read and held in
//               memory (so a side that gives up and closes is still noticed, and the link closes).
//               Switching back to 'forward' delivers everything that was held, in order.
//   'blackhole' new connections are accepted, whatever they send is read and discarded, and
//               nothing is ever answered (no connection to the server is made). Connections
//               opened before keep forwarding.
//   'reset'     new connections are accepted and reset at once (RST).
//
// plus one-shot faults: `dropAll()` cuts every connection, and `dropAfter(bytes)` cuts a
// connection once it has sent that many more bytes from the server to the client (e.g. in the
// middle of a large result). Only 127.0.0.1 is ever used.

const net = require('node:net')

const MODES = new Set(['forward', 'stall', 'blackhole', 'reset'])

class Link {
  constructor(proxy, client, upstream) {
    this.proxy = proxy
    this.client = client
    this.upstream = upstream
    this.toServer = [] // held while stalled
    this.toClient = []
    this.downBytes = 0 // server → client bytes since the last dropAfter()
    this.closed = false
  }

  start() {
    const { client, upstream } = this
    client.on('data', (d) => this.#fromClient(d))
    upstream.on('data', (d) => this.#fromServer(d))
    // Backpressure: a slow reader pauses the other side.
    upstream.on('drain', () => client.resume())
    client.on('drain', () => upstream.resume())
    for (const s of [client, upstream]) {
      s.on('error', () => this.close())
      s.on('close', () => this.close())
      s.on('end', () => this.close())
    }
  }

  #fromClient(d) {
    this.proxy.bytesUp += d.length
    if (this.proxy.mode === 'stall') {
      this.toServer.push(d)
      return
    }
    if (!this.upstream.write(d)) this.client.pause()
  }

  #fromServer(d) {
    this.proxy.bytesDown += d.length
    if (this.proxy.mode === 'stall') {
      this.toClient.push(d)
      return
    }
    const limit = this.proxy.dropLimit
    if (limit !== null) {
      this.downBytes += d.length
      if (this.downBytes > limit) {
        // Forward part of the chunk so the client really is in the middle of a message.
        const keep = Math.max(0, d.length - (this.downBytes - limit))
        if (keep > 0) this.client.write(d.subarray(0, keep))
        this.proxy.drops++
        this.proxy.dropLimit = this.proxy.dropOnce ? null : limit
        this.kill(this.proxy.dropHow)
        return
      }
    }
    if (!this.client.write(d)) this.upstream.pause()
  }

  unstall() {
    if (this.closed) return
    for (const d of this.toServer.splice(0)) this.upstream.write(d)
    for (const d of this.toClient.splice(0)) this.client.write(d)
  }

  /** 'fin' closes politely, 'rst' resets. */
  kill(how = 'rst') {
    if (this.closed) return
    this.closed = true
    for (const s of [this.client, this.upstream]) {
      if (how === 'rst' && typeof s.resetAndDestroy === 'function' && s.readyState !== 'opening') s.resetAndDestroy()
      else s.destroy()
    }
    this.proxy.links.delete(this)
  }

  close() {
    if (this.closed) return
    this.closed = true
    this.client.destroy()
    this.upstream.destroy()
    this.proxy.links.delete(this)
  }
}

class Proxy {
  constructor(targetPort, targetHost = '127.0.0.1') {
    this.targetPort = targetPort
    this.targetHost = targetHost
    this.mode = 'forward'
    this.links = new Set()
    this.holes = new Set() // blackholed client sockets
    this.accepted = 0
    this.bytesUp = 0
    this.bytesDown = 0
    this.drops = 0
    this.dropLimit = null
    this.dropOnce = true
    this.dropHow = 'rst'
    this.port = 0
    this.server = net.createServer({ pauseOnConnect: false }, (socket) => this.#accept(socket))
  }

  listen() {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(0, '127.0.0.1', () => {
        this.port = this.server.address().port
        resolve(this)
      })
    })
  }

  #accept(client) {
    this.accepted++
    client.on('error', () => {})
    if (this.mode === 'reset') {
      client.resetAndDestroy()
      return
    }
    if (this.mode === 'blackhole') {
      this.holes.add(client)
      client.on('data', () => {})
      client.on('close', () => this.holes.delete(client))
      return
    }
    const upstream = net.connect(this.targetPort, this.targetHost)
    upstream.setNoDelay(true)
    client.setNoDelay(true)
    const link = new Link(this, client, upstream)
    this.links.add(link)
    link.start()
  }

  /** Switches the mode; see the top of the file. */
  setMode(mode) {
    if (!MODES.has(mode)) throw new Error(`unknown proxy mode ${mode}`)
    const was = this.mode
    this.mode = mode
    if (was === 'stall' && mode !== 'stall') for (const l of this.links) l.unstall()
  }

  /** Cuts the next connection (or every one, with once=false) after `bytes` more bytes to the client. */
  dropAfter(bytes, { once = true, how = 'rst' } = {}) {
    for (const l of this.links) l.downBytes = 0
    this.dropLimit = bytes
    this.dropOnce = once
    this.dropHow = how
  }

  /** Cuts every connection now. */
  dropAll(how = 'rst') {
    for (const l of [...this.links]) l.kill(how)
    for (const s of [...this.holes]) s.destroy()
    this.holes.clear()
  }

  /** Connections currently open through the proxy (forwarding or stalled). */
  get open() {
    return this.links.size
  }

  /** Blackholed connections currently open. */
  get blackholed() {
    return this.holes.size
  }

  async close() {
    this.dropAll('fin')
    await new Promise((resolve) => this.server.close(() => resolve()))
  }
}

/** Starts a proxy on a free loopback port in front of `targetPort`. */
async function startProxy(targetPort, targetHost) {
  return new Proxy(targetPort, targetHost).listen()
}

/** The same URL with host and port replaced by the proxy's. */
function viaProxy(url, proxy) {
  const u = new URL(url)
  u.hostname = '127.0.0.1'
  u.port = String(proxy.port)
  return u.toString()
}

module.exports = { startProxy, viaProxy, Proxy }
