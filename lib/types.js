'use strict'
// Type parsers as node-postgres lets code change them: per client (`client.setTypeParser`, pg's
// TypeOverrides) and for the whole process (`defaults.parseInt8`, pg's `pg.defaults.parseInt8`,
// and `types.setTypeParser`, pg-types' own registry, which onepool's default parsers read).

const pgTypes = require('pg-types')

const INT8 = 20
const INT4 = 23
const INT8_ARRAY = 1016
const INT4_ARRAY = 1007

/** pg's TypeOverrides: parsers set here win over `base`'s (a `{ getTypeParser }`). */
class TypeOverrides {
  constructor(base) {
    this._base = base
    this.text = {}
    this.binary = {}
  }

  setTypeParser(oid, format, parser) {
    if (typeof format === 'function') {
      parser = format
      format = 'text'
    }
    this[format === 'binary' ? 'binary' : 'text'][oid] = parser
  }

  getTypeParser(oid, format = 'text') {
    return this[format === 'binary' ? 'binary' : 'text'][oid] || this._base.getTypeParser(oid, format)
  }
}

// pg-types' int8 parsers as shipped, before any parseInt8 changed them.
const int8Text = pgTypes.getTypeParser(INT8, 'text')
const int8ArrayText = pgTypes.getTypeParser(INT8_ARRAY, 'text')

/**
 * onepool's `defaults`, as node-postgres's: `defaults.parseInt8 = true` makes every `int8`
 * (`count(*)`, `bigserial`) a number instead of a string, in every pool of the process, by
 * setting pg-types' own parsers exactly as pg does (so `int8[]` follows too). Numbers above
 * 2^53 lose precision then, which is why both default to strings.
 */
const defaults = {}
let parseInt8 = false
Object.defineProperty(defaults, 'parseInt8', {
  enumerable: true,
  get: () => parseInt8,
  set(value) {
    parseInt8 = Boolean(value)
    pgTypes.setTypeParser(INT8, 'text', parseInt8 ? pgTypes.getTypeParser(INT4, 'text') : int8Text)
    pgTypes.setTypeParser(INT8_ARRAY, 'text', parseInt8 ? pgTypes.getTypeParser(INT4_ARRAY, 'text') : int8ArrayText)
  },
})

module.exports = { TypeOverrides, defaults }
