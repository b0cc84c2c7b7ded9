'use strict'
// Leak detection (HikariCP's leakDetectionThreshold): a client held longer than
// `leakDetectionMs` is reported with the stack of the code that checked it out, and reported
// again when it finally comes back. Off by default; when off, nothing is captured.

function defaultOnLeak(event) {
  if (event.kind === 'leak') {
    console.warn(
      `onepool: a client of pool "${event.pool}" has been checked out for ${event.heldMs} ms without release(); ` +
        `it was acquired at:\n${event.stack}`,
    )
  } else {
    console.warn(`onepool: the leaked client of pool "${event.pool}" was returned after ${event.heldMs} ms`)
  }
}

/** Starts watching a checkout; returns a function to call on release (or null when off). */
function watchCheckout({ leakDetectionMs, onLeak }, nameOf) {
  if (!leakDetectionMs) return null
  const poolName = nameOf()
  const report = onLeak || defaultOnLeak
  const stack = new Error('checked out here').stack.split('\n').slice(3).join('\n')
  const start = Date.now()
  let leaked = false
  const timer = setTimeout(() => {
    leaked = true
    safely(report, { kind: 'leak', heldMs: Date.now() - start, stack, pool: poolName })
  }, leakDetectionMs)
  timer.unref()
  return () => {
    clearTimeout(timer)
    if (leaked) safely(report, { kind: 'returned', heldMs: Date.now() - start, stack, pool: poolName })
  }
}

function safely(fn, event) {
  try {
    fn(event)
  } catch (e) {
    console.warn('onepool: onLeak threw', e)
  }
}

module.exports = { watchCheckout }
