'use strict'
// The example's home page in a real headless Chromium, for the Next.js end-to-end run: the live
// chart renders without console errors, keeps updating while lib/db.ts is edited (each edit is a
// hot reload the chart marks), and every number it shows is the one /api/stats answered to the
// poll that drew it. playwright-core drives the system's Chromium (scripts/prerequisites.js
// installs Debian's `chromium`); it downloads no browser of its own.

const { chromium } = require('playwright-core')
const { findChromium } = require('../../scripts/prerequisites')

// What the page shows (`data-stat`) and where /api/stats has it.
const SHOWN = {
  max: (s) => s.pool.max,
  size: (s) => s.pool.size,
  inUse: (s) => s.pool.inUse,
  waiting: (s) => s.pool.waiting,
  server: (s) => s.server.connections,
}

/** Everything the page shows, read in one turn of its event loop (one React commit). */
function readPage() {
  const shown = {}
  for (const el of document.querySelectorAll('[data-stat]')) shown[el.getAttribute('data-stat')] = Number(el.textContent)
  const at = document.querySelector('[data-at]')
  const lines = [...document.querySelectorAll('svg[data-chart] polyline')]
  return {
    shown,
    at: at && at.getAttribute('data-at'),
    points: lines.length ? lines[0].getAttribute('points').trim().split(/\s+/).filter(Boolean).length : 0,
    reloadMarks: document.querySelectorAll('svg[data-chart] [data-reload-mark]').length,
  }
}

/**
 * Opens `http://127.0.0.1:port/` and records the page's console errors, uncaught exceptions and
 * every /api/stats answer it received. `check(name, ok, detail)` records the results.
 */
async function openChart(port, check) {
  const browser = await chromium.launch({ executablePath: findChromium(), args: ['--no-sandbox'] })
  const page = await browser.newPage({ viewport: { width: 900, height: 720 } })
  const errors = []
  const answers = new Map() // the `at` of each /api/stats answer → its body
  page.on('console', (m) => m.type() === 'error' && errors.push(`console: ${m.text()} (${m.location().url || 'no url'})`))
  page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`))
  page.on('response', async (r) => {
    if (!new URL(r.url()).pathname.endsWith('/api/stats')) return
    const body = await r.json().catch(() => null)
    if (body && body.at) answers.set(body.at, body)
  })
  await page.goto(`http://127.0.0.1:${port}/`, { waitUntil: 'load', timeout: 120_000 })
  await page.waitForSelector('svg[data-chart]', { timeout: 120_000 })
  const first = await page.evaluate(readPage)
  check('chart: the home page renders the live chart in Chromium', first.at !== null && first.points >= 1, JSON.stringify(first))
  return {
    first,
    /** After the edits: the chart moved on, marked reloads, and matches the answers it drew. */
    async finish({ screenshot }) {
      // two more polls, so the last edit's reload is on the chart
      const seenAt = (await page.evaluate(readPage)).at
      await page.waitForFunction((at) => document.querySelector('[data-at]')?.getAttribute('data-at') !== at, seenAt, { timeout: 30_000 })
      const last = await page.evaluate(readPage)
      check(
        'chart: it kept updating across the edits of lib/db.ts, with each reload it saw marked',
        Date.parse(last.at) > Date.parse(first.at) && last.points > first.points && last.shown.reloads >= 1 && last.reloadMarks === last.shown.reloads,
        `points ${first.points} → ${last.points}, reloads shown ${last.shown.reloads}, marks ${last.reloadMarks}`,
      )
      const answer = answers.get(last.at)
      const differing = answer ? Object.keys(SHOWN).filter((k) => last.shown[k] !== SHOWN[k](answer)) : Object.keys(SHOWN)
      check(
        'chart: the numbers shown are those /api/stats answered',
        differing.length === 0,
        answer ? differing.map((k) => `${k}: shown ${last.shown[k]}, answered ${SHOWN[k](answer)}`).join('; ') : `no answer with at=${last.at} among ${answers.size}`,
      )
      await page.screenshot({ path: screenshot })
      check('chart: no console error or uncaught exception on the page', errors.length === 0, errors.slice(0, 3).join(' | '))
      await browser.close()
    },
    close: () => browser.close().catch(() => {}),
  }
}

module.exports = { openChart }
