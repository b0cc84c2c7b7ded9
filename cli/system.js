'use strict'
// What `onepool doctor` needs to know about the machine it runs on: the host part of onepool's
// application_name tag, whether a process id exists here, and which TCP connections are still
// open here (Linux only). Everything else in the doctor is pure and testable without a machine.

const fs = require('node:fs')
const os = require('node:os')

/**
 * The host as onepool writes it into `application_name` (`tag_application_name` and `hostname` in
 * src/config.rs): the short host name (up to the first dot), at most 20 characters.
 */
function tagHost(hostname = os.hostname()) {
  return Array.from(String(hostname).split('.')[0]).slice(0, 20).join('')
}

/** Host names compare case-insensitively (Windows reports COMPUTERNAME upper-case). */
function sameHost(a, b) {
  return typeof a === 'string' && typeof b === 'string' && a.length > 0 && a.toLowerCase() === b.toLowerCase()
}

/**
 * true: a process with this id exists on this machine (EPERM means it exists but belongs to
 * another user); false: it does not (ESRCH); null: cannot tell. Ids that `kill` would treat
 * specially (0, negative: process groups) or cannot take are "cannot tell", never "gone".
 */
function processExists(pid) {
  if (!Number.isSafeInteger(pid) || pid <= 0 || pid > 0x7fffffff) return null
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    if (e.code === 'ESRCH') return false
    if (e.code === 'EPERM') return true
    return null
  }
}

/**
 * The TCP connections in state ESTABLISHED in this network namespace, as a Set of
 * "localPort:remotePort" strings, read from /proc/net/tcp and /proc/net/tcp6. null where that
 * is not available (not Linux). A backend whose client socket is still established here is held
 * by a live process (a PgBouncer, a forked child, ...), whatever its application_name says.
 */
function establishedTcp(files = ['/proc/net/tcp', '/proc/net/tcp6']) {
  if (process.platform !== 'linux') return null
  const out = new Set()
  let readAny = false
  for (const file of files) {
    let text
    try {
      text = fs.readFileSync(file, 'utf8')
    } catch {
      continue
    }
    readAny = true
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/)
      if (f.length < 4 || f[3] !== '01') continue // 01 = TCP_ESTABLISHED
      const local = parseInt(f[1].split(':')[1], 16)
      const remote = parseInt(f[2].split(':')[1], 16)
      if (Number.isInteger(local) && Number.isInteger(remote)) out.add(`${local}:${remote}`)
    }
  }
  return readAny ? out : null
}

module.exports = { tagHost, sameHost, processExists, establishedTcp }
