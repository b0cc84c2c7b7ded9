'use strict'
// LISTEN/NOTIFY in the Next.js end-to-end run: app/api/listen/route.ts subscribes at module scope
// (the naive way). Every round edits that route (its ROUTE_EDIT, with lines added above it so that
// every line below moves) on top of the round's lib/db.ts edit, waits until the dev server serves
// the edited module, sends one notification through the route (POST: pool.notify) and counts how
// often the handler ran for it: exactly once, however many evaluations of the route the dev
// server made, with one listening connection on the server. At the end the /listen page must show
// the last notification.

const { sleep, log } = require('../../scripts/next-app/constants')
const { editListenRoute } = require('../../scripts/next-app')
const { get } = require('../../scripts/next-app/server')

/** One round: edit, wait for the edited module, notify, count. Pushes a row to `rows`. */
async function listenRound(server, db, bundler, round, rows) {
  const port = server.port
  if (round > 0) editListenRoute(round)
  const t0 = Date.now()
  let r
  do {
    r = await get(port, '/api/listen', 60_000)
    if (r.status === 200 && r.body && r.body.routeEdit === round) break
    await sleep(200)
  } while (Date.now() - t0 < 60_000)
  const served = Boolean(r.body && r.body.routeEdit === round)
  const payload = `${bundler}-round-${round}`
  const sent = await fetch(`http://127.0.0.1:${port}/api/listen?payload=${payload}`, { method: 'POST' }).then(
    (res) => res.status,
    (e) => e.message,
  )
  const handled = (body) => (body && body.handled && body.handled[payload]) || 0
  for (const deadline = Date.now() + 15_000; Date.now() < deadline; await sleep(100)) {
    r = await get(port, '/api/listen')
    if (handled(r.body) > 0) break
  }
  await sleep(500) // a second, leaked subscription would have handled it by now
  r = await get(port, '/api/listen')
  const backends = await db.sampler.count(`and query ~ '^(UN)?LISTEN '`)
  const row = { round, served, sent, count: handled(r.body), listening: r.body && r.body.listening, evaluations: r.body && r.body.evaluations, backends }
  rows.push(row)
  log(
    `${bundler} LISTEN round ${round}: edit served ${served}, POST ${sent}, handled ${row.count}×, stats().listening ${row.listening}, ` +
      `listening backends ${backends}, route evaluated ${row.evaluations}× so far (${Date.now() - t0} ms)`,
  )
}

/** The checks over a dev run's rounds, and the /listen page. */
async function listenChecks(server, bundler, rows, check) {
  const bad = rows.filter((r) => !r.served || r.sent !== 200 || r.count !== 1 || r.listening !== 1 || r.backends !== 1)
  const evaluations = rows.length ? rows[rows.length - 1].evaluations : 0
  check(
    `${bundler}: /api/listen subscribes at module scope; ${rows.length} rounds, the route evaluated ${evaluations}×: each notification handled exactly once, one listening connection`,
    rows.length > 1 && bad.length === 0 && evaluations >= rows.length,
    bad.length
      ? bad.map((r) => `round ${r.round}: edit served ${r.served}, POST ${r.sent}, handled ${r.count}×, listening ${r.listening}, backends ${r.backends}`).join('; ')
      : `${rows.length} notifications`,
  )
  const page = await get(server.port, '/listen')
  const last = rows.length ? `${bundler}-round-${rows[rows.length - 1].round}` : '?'
  check(`${bundler}: the /listen page shows the last notification`, page.status === 200 && page.text.includes(last), `${page.status}, looking for ${last}`)
}

module.exports = { listenRound, listenChecks }
