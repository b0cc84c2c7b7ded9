'use strict'
// Per JS environment, one channel for query results: the native side queues finished requests
// and wakes this thread once per batch; we settle the matching promises. Much cheaper than one
// native promise per query. While requests are pending a ref'd timer keeps the process alive;
// otherwise nothing does (an idle pool never holds the process open).

const MAX_ID = 0x7fffffff

function createDispatcher(binding) {
  const pending = new Map()
  let nextId = 1
  const keepAlive = setInterval(() => {}, MAX_ID)
  keepAlive.unref()

  // Settle in a setImmediate, not in the wake-up callback itself: Node runs queued wake-ups
  // back to back, and under load a fresh batch is always ready, so draining there would starve
  // timers and I/O. One drain per event-loop turn keeps the loop moving.
  let scheduled = false
  const drain = () => {
    scheduled = false
    const batch = binding.takeCompletions(envId)
    for (let i = 0; i < batch.length; i += 2) {
      const settle = pending.get(batch[i])
      if (settle !== undefined) {
        pending.delete(batch[i])
        settle(batch[i + 1])
      }
    }
    if (pending.size === 0) keepAlive.unref()
  }
  const envId = binding.initCompletions(() => {
    if (!scheduled) {
      scheduled = true
      setImmediate(drain)
    }
  })

  /** Runs a query on a native pool or session; resolves with a result Buffer or a NativeError. */
  function submit(target, text, values, abortHandle) {
    const id = nextId
    nextId = nextId === MAX_ID ? 1 : nextId + 1
    return new Promise((resolve) => {
      pending.set(id, resolve)
      if (pending.size === 1) keepAlive.ref()
      try {
        target.submit(text, values, envId, id, abortHandle)
      } catch (e) {
        pending.delete(id)
        if (pending.size === 0) keepAlive.unref()
        throw e
      }
    })
  }

  return { submit }
}

module.exports = { createDispatcher }
