'use strict'
// Tagged templates: every interpolated value becomes a $n parameter — never text in the SQL —
// except fragments made here (ident(), inList(), fragment``). Text only ever comes from a
// template's own strings or from a fragment, and a fragment is recognised by a private field
// that only this module can set: no string, JSON value, look-alike object or Proxy can pass for
// one.

const { clientError } = require('./errors')

const invalid = (message) => clientError('PARAM_INVALID', message)

class Fragment {
  #strings
  #values

  /** `strings` has exactly one more element than `values`; both are frozen. */
  constructor(strings, values) {
    this.#strings = strings
    this.#values = values
    Object.freeze(this)
  }

  get strings() {
    return this.#strings
  }

  get values() {
    return this.#values
  }

  /** Reached only when a fragment is used as a value (pool.query(text, [frag]), or a fragment of another copy of onepool). */
  toPostgres() {
    throw invalid('a sql fragment is SQL text, not a value: interpolate it into a sql`` template of the same copy of onepool')
  }

  static is(v) {
    return v !== null && typeof v === 'object' && #strings in v
  }

  static parts(f) {
    return [f.#strings, f.#values]
  }
}

const frozen = (array) => Object.freeze(Array.from(array))

/**
 * The strings of a tagged-template call: an array with a `raw` array of the same length, one
 * string per gap, one more than the values. A plain string or array never qualifies, so text
 * cannot reach the SQL this way. (Real template objects are also frozen, but TypeScript's ES5
 * output and Babel's loose mode build unfrozen ones, so that is not required.)
 */
function checkTemplate(strings, valueCount, what) {
  if (!Array.isArray(strings) || !Array.isArray(strings.raw)) {
    const got = typeof strings === 'string' ? 'a string' : strings === null ? 'null' : Array.isArray(strings) ? 'an array' : typeof strings
    throw invalid(`${what} is a template tag: write ${what}\`...\`, not ${what}(...) (got ${got}); text is never spliced into SQL`)
  }
  if (strings.raw.length !== strings.length || strings.length !== valueCount + 1) {
    throw invalid(`${what} was called with ${strings.length} template strings and ${valueCount} values: not a tagged template`)
  }
  for (let i = 0; i < strings.length; i++) {
    if (typeof strings[i] !== 'string') {
      // A tagged template keeps an invalid escape such as \u or \x as `undefined`.
      throw invalid(`${what}\`...\` has an invalid escape sequence near ${JSON.stringify(String(strings.raw[i]))}`)
    }
  }
}

/**
 * The fragment for a tag's arguments: a tagged template, or (alone) a fragment built by these
 * helpers, so that `sql(fragment)` and `sql.compile(fragment)` work.
 */
function fragmentOf(strings, values, what) {
  if (values.length === 0 && Fragment.is(strings)) return strings
  checkTemplate(strings, values.length, what)
  return new Fragment(Object.isFrozen(strings) ? strings : frozen(strings), frozen(values))
}

/** Postgres truncates longer identifiers (NAMEDATALEN - 1), which could name another object. */
const MAX_IDENT_BYTES = 63
// With the u flag a paired surrogate reads as one code point, so only a lone one matches
// (String.prototype.isWellFormed needs Node 20).
const LONE_SURROGATE = /\p{Surrogate}/u

function quoteIdent(name) {
  if (typeof name !== 'string') throw invalid(`an identifier must be a string, got ${name === null ? 'null' : typeof name}`)
  if (name.length === 0) throw invalid('an identifier must not be empty')
  if (name.includes('\u0000')) throw invalid('an identifier must not contain a NUL character')
  // A lone surrogate would be sent as U+FFFD: a different name from the one given.
  if (LONE_SURROGATE.test(name)) throw invalid('an identifier must be well-formed Unicode (it contains a lone surrogate)')
  if (Buffer.byteLength(name) > MAX_IDENT_BYTES) {
    throw invalid(`an identifier must be at most ${MAX_IDENT_BYTES} bytes (Postgres would truncate it): ${JSON.stringify(name.slice(0, 20))}…`)
  }
  return '"' + name.replace(/"/g, '""') + '"'
}

/** A quoted identifier (`"my table"`); `ident('schema', 'table')` joins with a dot. */
function ident(...names) {
  if (names.length === 0) throw invalid('ident() needs at least one name')
  return new Fragment(Object.freeze([names.map(quoteIdent).join('.')]), Object.freeze([]))
}

// A type name written as SQL: a word, optionally schema-qualified, optionally an array. Nothing
// that could end the cast (spaces, quotes, parentheses, operators) gets through.
const TYPE_NAME = /^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?(?:\[\])*$/

/**
 * `(…)` with one parameter per element, for `x in ${inList(ids)}`. With a `type` every element
 * is cast to it, and an empty list becomes `(SELECT NULL::type WHERE FALSE)`: no rows, so
 * `x IN` it is false and `x NOT IN` it is true for every x. SQL has no empty list, and that empty
 * subquery needs the type (an untyped one would be text, which an int column cannot compare
 * with), so an empty list without a type is refused.
 */
function inList(values, type) {
  if (!Array.isArray(values)) throw invalid(`inList() takes an array, got ${values === null ? 'null' : typeof values}`)
  if (type !== undefined && (typeof type !== 'string' || !TYPE_NAME.test(type))) {
    throw invalid(`inList()'s type must be a type name such as 'int8', 'text', 'uuid' or 'myschema.mytype', got ${JSON.stringify(String(type))}`)
  }
  if (values.length === 0) {
    if (type === undefined) {
      throw invalid(
        "inList([]) needs the element type, as inList(ids, 'int8'): SQL has no empty list, and the empty subquery that stands for one must have the column's type",
      )
    }
    return new Fragment(Object.freeze([`(SELECT NULL::${type} WHERE FALSE)`]), Object.freeze([]))
  }
  const cast = type === undefined ? '' : `::${type}`
  const strings = ['(', ...Array(values.length - 1).fill(`${cast}, `), `${cast})`]
  return new Fragment(Object.freeze(strings), frozen(values))
}

/** Compiles a fragment (with nested fragments) into `{ text, values }`. */
function compileFragment(fragment) {
  let text = ''
  const params = []
  const walk = (f) => {
    const [strs, vals] = Fragment.parts(f)
    for (let i = 0; i < strs.length; i++) {
      text += strs[i]
      if (i === vals.length) break
      const v = vals[i]
      if (Fragment.is(v)) {
        walk(v)
      } else {
        params.push(v)
        text += '$' + params.length
      }
    }
  }
  walk(fragment)
  return { text, values: params }
}

/** `compile(strings, values)`: what `sql` sends for a tagged template's arguments. */
function compile(strings, values) {
  return compileFragment(fragmentOf(strings, values, 'sql'))
}

/** The `sql` tag bound to a pool or client: resolves to the rows (with rowCount and command). */
function makeSql(queryable) {
  const sql = (strings, ...values) => {
    let compiled
    try {
      compiled = compileFragment(fragmentOf(strings, values, 'sql'))
    } catch (e) {
      return Promise.reject(e)
    }
    return queryable.query(compiled.text, compiled.values).then((result) => {
      const rows = result.rows
      Object.defineProperty(rows, 'rowCount', { value: result.rowCount, enumerable: false })
      Object.defineProperty(rows, 'command', { value: result.command, enumerable: false })
      Object.defineProperty(rows, 'fields', { value: result.fields, enumerable: false })
      return rows
    })
  }
  sql.ident = ident
  sql.inList = inList
  sql.fragment = (strings, ...values) => fragmentOf(strings, values, 'sql.fragment')
  sql.compile = (strings, ...values) => compileFragment(fragmentOf(strings, values, 'sql.compile'))
  return sql
}

module.exports = { makeSql, compile, ident, inList }
