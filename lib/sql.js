'use strict'
// Tagged templates: every interpolated value becomes a $n parameter — never text in the SQL —
// except the explicit fragments made by ident(), inList() and fragment``.

const { clientError } = require('./errors')

const FRAGMENT = Symbol('onepool.sql.fragment')

class Fragment {
  constructor(strings, values) {
    this[FRAGMENT] = true
    this.strings = strings
    this.values = values
  }
}

function quoteIdent(name) {
  if (typeof name !== 'string' || name.length === 0 || name.includes('\u0000')) {
    throw clientError('PARAM_INVALID', `an identifier must be a non-empty string, got ${typeof name === 'string' ? '""' : typeof name}`)
  }
  return '"' + name.replace(/"/g, '""') + '"'
}

/** A quoted identifier (`"my table"`); `ident('schema', 'table')` joins with a dot. */
function ident(...names) {
  const text = names.map(quoteIdent).join('.')
  return new Fragment([text], [])
}

/** `(…)` with one parameter per element, for `where id in ${inList(ids)}`; empty → `(NULL)`. */
function inList(values) {
  if (!Array.isArray(values)) throw clientError('PARAM_INVALID', 'inList() takes an array')
  if (values.length === 0) return new Fragment(['(NULL)'], [])
  return new Fragment(['(', ...Array(values.length - 1).fill(', '), ')'], values)
}

/** Compiles strings/values (with nested fragments) into `{ text, values }`. */
function compile(strings, values) {
  let text = ''
  const params = []
  const walk = (strs, vals) => {
    for (let i = 0; i < strs.length; i++) {
      text += strs[i]
      if (i >= vals.length) continue
      const v = vals[i]
      if (v !== null && typeof v === 'object' && v[FRAGMENT]) {
        walk(v.strings, v.values)
      } else {
        params.push(v)
        text += '$' + params.length
      }
    }
  }
  walk(strings, values)
  return { text, values: params }
}

function isTemplate(strings) {
  return Array.isArray(strings) && Array.isArray(strings.raw)
}

/** The `sql` tag bound to a pool or client: resolves to the rows (with rowCount and command). */
function makeSql(queryable) {
  const sql = (strings, ...values) => {
    if (!isTemplate(strings)) {
      return Promise.reject(clientError('PARAM_INVALID', 'sql is a template tag: write sql`select ...`, not sql("select ...")'))
    }
    const { text, values: params } = compile(strings, values)
    return queryable.query(text, params).then((result) => {
      const rows = result.rows
      Object.defineProperty(rows, 'rowCount', { value: result.rowCount, enumerable: false })
      Object.defineProperty(rows, 'command', { value: result.command, enumerable: false })
      Object.defineProperty(rows, 'fields', { value: result.fields, enumerable: false })
      return rows
    })
  }
  sql.ident = ident
  sql.inList = inList
  sql.fragment = (strings, ...values) => new Fragment(strings, values)
  sql.compile = (strings, ...values) => compile(strings, values)
  return sql
}

module.exports = { makeSql, compile, ident, inList }
