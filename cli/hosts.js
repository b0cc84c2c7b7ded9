'use strict'
// The servers of a multi-host connection string (libpq's `postgres://u@h1:5432,h2:5433/db`, or
// `?host=h1,h2&port=5432,5433`), each as a connection string of its own: the doctor looks at
// every server of a target, one at a time.

const ROUTING = ['host', 'port', 'target_session_attrs', 'load_balance_hosts']

/** `[host, port]` of one authority entry: `h`, `h:5432`, `[::1]:5432`. */
function entry(text) {
  const v6 = /^\[([^\]]*)\](?::(.*))?$/.exec(text)
  if (v6) return [v6[1], v6[2] || '']
  const at = text.lastIndexOf(':')
  return at < 0 ? [text, ''] : [text.slice(0, at), text.slice(at + 1)]
}

/**
 * One `{ endpoint, url }` per server of a multi-host `url`, in its order; null for a URL that
 * names one server (or that this cannot read: the pool reports those).
 */
function splitHosts(url) {
  const m = /^(postgres(?:ql)?:\/\/)([^/?#]*)([^?#]*)(?:\?([^#]*))?$/i.exec(url)
  if (!m) return null
  const [, scheme, authority, path, query = ''] = m
  const at = authority.lastIndexOf('@')
  const userinfo = authority.slice(0, at + 1)
  const params = new URLSearchParams(query)
  let hosts
  let ports
  if (params.has('host') && params.get('host').includes(',')) {
    hosts = params.get('host').split(',')
    ports = (params.get('port') || '').split(',')
  } else if (authority.slice(at + 1).includes(',')) {
    const entries = authority
      .slice(at + 1)
      .split(',')
      .map(entry)
    hosts = entries.map(([h]) => decodeURIComponent(h))
    ports = entries.map(([, p]) => p)
    if (params.has('port')) ports = params.get('port').split(',')
  } else {
    return null
  }
  const rest = new URLSearchParams([...params].filter(([k]) => !ROUTING.includes(k)))
  return hosts.map((host, i) => {
    const port = (ports.length === 1 ? ports[0] : ports[i] || '').trim()
    const own = new URLSearchParams(rest)
    let authorityHost = ''
    if (host.startsWith('/')) own.set('host', host)
    else authorityHost = host.includes(':') ? `[${host}]` : encodeURIComponent(host)
    if (port && host.startsWith('/')) own.set('port', port)
    else if (port) authorityHost += `:${port}`
    const search = own.toString()
    return {
      endpoint: `${host.includes(':') ? `[${host}]` : host}:${port || '5432'}`,
      url: `${scheme}${userinfo}${authorityHost}${path}${search ? `?${search}` : ''}`,
    }
  })
}

module.exports = { splitHosts }
