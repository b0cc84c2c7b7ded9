'use strict'
// The server's notices (RAISE NOTICE, "table does not exist, skipping", ...) as node-postgres's
// `notice` event gives them: one object per NoticeResponse with pg's field names. They arrive
// with the request they belong to (src/wire.rs: between the last result and the result count,
// flagged in it; for a failed request, as the error's `notices`), so a client emits them before
// that request settles, as pg does.

const HAS_NOTICES = 0x80000000

// Protocol field type → pg's name for it (pg-protocol's parseErrorMessage).
const FIELDS = {
  C: 'code',
  M: 'message',
  D: 'detail',
  H: 'hint',
  P: 'position',
  p: 'internalPosition',
  q: 'internalQuery',
  W: 'where',
  s: 'schema',
  t: 'table',
  c: 'column',
  d: 'dataType',
  n: 'constraint',
  F: 'file',
  L: 'line',
  R: 'routine',
}

/** A notice as pg's NoticeMessage shows it (every field present, undefined when not sent). */
function emptyNotice() {
  return {
    name: 'notice',
    severity: undefined,
    code: undefined,
    message: undefined,
    detail: undefined,
    hint: undefined,
    position: undefined,
    internalPosition: undefined,
    internalQuery: undefined,
    where: undefined,
    schema: undefined,
    table: undefined,
    column: undefined,
    dataType: undefined,
    constraint: undefined,
    file: undefined,
    line: undefined,
    routine: undefined,
  }
}

/** The notices encoded in `buf` from `start` to `end`. */
function readNotices(buf, start, end) {
  const out = []
  let notice = emptyNotice()
  let verbatimSeverity
  for (let at = start; at < end; ) {
    const type = buf[at++]
    if (type === 0) {
      // pg shows the localised severity (S); V is the same word untranslated.
      if (notice.severity === undefined) notice.severity = verbatimSeverity
      out.push(notice)
      notice = emptyNotice()
      verbatimSeverity = undefined
      continue
    }
    const len = buf.readUInt32BE(at)
    const value = buf.utf8Slice(at + 4, at + 4 + len)
    at += 4 + len
    const key = String.fromCharCode(type)
    if (key === 'S') notice.severity = value
    else if (key === 'V') verbatimSeverity = value
    else if (FIELDS[key] !== undefined) notice[FIELDS[key]] = value
  }
  return out
}

/** A result buffer's notices, or null when it has none. */
function resultNotices(buf) {
  const countAt = buf.length - 4
  if (buf.readUInt32BE(countAt) < HAS_NOTICES) return null
  const len = buf.readUInt32BE(countAt - 4)
  return readNotices(buf, countAt - 4 - len, countAt - 4)
}

/** A native error's notices, or null. */
function errorNotices(native) {
  const buf = native.notices
  return buf ? readNotices(buf, 0, buf.length) : null
}

/** Emits each notice on `emitter` (a PoolClient), in the order the server sent them. */
function emitNotices(emitter, notices) {
  for (const notice of notices) emitter.emit('notice', notice)
}

/**
 * node-postgres's `notice` events for one request, on `client`. A listener's exception is an
 * uncaught exception, as in pg, not the request's failure.
 */
function tellNotices(client, notices) {
  if (notices === null) return
  try {
    emitNotices(client, notices)
  } catch (e) {
    process.nextTick(() => {
      throw e
    })
  }
}

module.exports = { HAS_NOTICES, resultNotices, errorNotices, emitNotices, tellNotices }
