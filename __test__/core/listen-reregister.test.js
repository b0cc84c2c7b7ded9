'use strict'
// A module-scope subscription made again through a re-registered addon (its require cache entry
// and globalThis pin cleared: a new JS environment on this thread) replaces the previous one,
// never doubles it. Native addon only (scripts/test.js): in the WebAssembly build each
// evaluation of the loader starts a new instance with its own pools and subscription keys.

const test = require('node:test')
const assert = require('node:assert/strict')
const { uniqueName } = require('../helpers/db')
const { LISTEN_MODULE, fixtureState, listeningBackends, eventually } = require('../helpers/listen')
const { forgetOnepool } = require('../helpers/reload')

test('re-registering the addon (a new JS environment on this thread) still replaces the module-scope subscription', async () => {
  const app = uniqueName()
  const channel = uniqueName('env')
  const state = fixtureState(app, channel)
  let mod
  for (let i = 1; i <= 10; i++) {
    delete require.cache[LISTEN_MODULE]
    forgetOnepool({ addon: true })
    mod = require(LISTEN_MODULE)
    if (i === 1) await mod.sub.ready
    await mod.db.notify(channel, `e${i}`)
    await eventually(`notification ${i} was handled`, () => state.handled.length >= i)
  }
  await new Promise((r) => setTimeout(r, 100))
  assert.deepEqual(
    state.handled.map((h) => [h.evaluation, h.payload]),
    Array.from({ length: 10 }, (_, i) => [i + 1, `e${i + 1}`]),
  )
  assert.equal((await listeningBackends(app)).length, 1)
  await mod.db.end()
  delete globalThis.__onepoolListenFixture
})
