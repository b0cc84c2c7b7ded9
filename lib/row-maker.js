'use strict'
// Row objects are built by a small function made for their column names: an object literal
// with the columns as its keys, in order. Setting the columns one by one on `{}` instead goes
// through V8's generic keyed store for every cell (the names differ from column to column), and
// decoding a wide stream of rows spent most of its object-building time there.
//
// The names come from the server and end up in generated source, so each one is written as a
// JSON string literal, which cannot end early whatever the name holds. `__proto__` is written
// as a computed key, which makes a plain property (as pg's rows have) instead of setting the
// row's prototype. Duplicate names behave as assignments in order do: the first position, the
// last value.

/** Makers by column list; a process sees few distinct lists, and this bounds the odd one. */
const makers = new Map()
const MOST_MAKERS = 1000

function keyOf(name) {
  return name === '__proto__' ? '["__proto__"]' : JSON.stringify(name)
}

// The last list asked for, checked first: a statement run again and again (or a stream's
// batches) skips building the list's key.
let lastNames = []
let lastMake = null

function sameNames(a, b) {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** `(values) → row`: `values[i]` becomes the row's property `names[i]`. */
function rowMaker(names) {
  if (lastMake !== null && sameNames(lastNames, names)) return lastMake
  const id = names.join('\0')
  let make = makers.get(id)
  if (make === undefined) {
    if (makers.size >= MOST_MAKERS) makers.clear()
    const props = names.map((name, i) => `${keyOf(name)}: v[${i}]`).join(', ')
    make = new Function('v', `return { ${props} }`)
    makers.set(id, make)
  }
  lastNames = names
  lastMake = make
  return make
}

module.exports = { rowMaker }
