'use strict'
// The doctor's text report: plain ASCII, fitted to the terminal width (80 columns when not a
// terminal). The JSON document (cli/doctor.js) carries the same facts for machines.

const { duration, plural, appLabel, cut, width: textWidth } = require('./format')

const STATE_LABEL = {
  'idle in transaction': 'idle in tx',
  'idle in transaction (aborted)': 'idle in tx (aborted)',
  'fastpath function call': 'fastpath',
  hidden: '(hidden)',
}

function stateLabel(state) {
  if (state == null) return '?'
  return STATE_LABEL[state] || state
}

function ownerLabel(g) {
  if (!g.owner) return '-'
  switch (g.ownerStatus) {
    case 'gone':
      return `${g.owner} ${g.orphaned ? 'gone' : 'gone?'}`
    case 'other-host':
      return `${g.owner} remote`
    case 'unknown':
      return `${g.owner} ?`
    case 'alive':
      return `${g.owner} alive`
    default:
      return g.owner
  }
}

/** Wraps `text` to `width` columns: `first` before the first line, `rest` before the others. */
function wrap(text, width, first = '', rest = ' '.repeat(textWidth(first))) {
  const words = String(text).split(/\s+/).filter(Boolean)
  const lines = []
  let line = first
  let empty = true
  for (const w of words) {
    const candidate = empty ? line + w : `${line} ${w}`
    if (!empty && textWidth(candidate) > width) {
      lines.push(line)
      line = rest + w
    } else {
      line = candidate
    }
    empty = false
  }
  lines.push(line)
  return lines.map((l) => l + '\n').join('')
}

/**
 * Lays out a table. `columns`: { header, align: 'left'|'right', min (flexible columns only) };
 * flexible columns shrink (widest first, down to `min`) until the table fits `width`.
 * rows: { flag: ' ' | '!', cells: string[] }.
 */
function table(columns, rows, width) {
  const widths = columns.map((c, i) => Math.max(textWidth(c.header), ...rows.map((r) => textWidth(r.cells[i]))))
  const total = () => 2 + widths.reduce((a, b) => a + b, 0) + 2 * (columns.length - 1)
  while (total() > width) {
    let widest = -1
    for (let i = 0; i < columns.length; i++) {
      if (columns[i].min != null && widths[i] > columns[i].min && (widest < 0 || widths[i] > widths[widest])) widest = i
    }
    if (widest < 0) break
    widths[widest]--
  }
  const line = (flag, cells) => {
    const parts = cells.map((cell, i) => {
      const text = cut(cell, widths[i])
      const pad = ' '.repeat(widths[i] - textWidth(text))
      return columns[i].align === 'right' ? pad + text : text + pad
    })
    return `${flag} ${parts.join('  ')}`.trimEnd() + '\n'
  }
  return (
    line(
      ' ',
      columns.map((c) => c.header),
    ) + rows.map((r) => line(r.flag, r.cells)).join('')
  )
}

const LIMIT_LABEL = 24

function limitLine(label, used, limit, extra, width) {
  const left = cut(`  ${label}`, LIMIT_LABEL - 1).padEnd(LIMIT_LABEL)
  const percent = limit == null ? '' : `${limit === 0 ? 100 : Math.round((100 * used) / limit)}%`
  const line = `${left}${String(used).padStart(5)} / ${String(limit ?? 'none').padEnd(6)}${percent.padStart(4)}${extra ? '  ' + extra : ''}`
  return cut(line, width) + '\n'
}

function renderText(doc, { width = 80 } = {}) {
  width = Math.max(60, width)
  let out = ''
  const header = `onepool doctor: ${doc.target} (PostgreSQL ${doc.server.version}${doc.server.standby ? ', a standby' : ''})`
  out += cut(header, width) + '\n'
  out += cut(`checked ${doc.checkedAt} from host ${doc.host}`, width) + '\n\n'

  out += `${'Limits'.padEnd(LIMIT_LABEL)}${'used'.padStart(5)} / limit\n`
  const role = doc.role
  let roleExtra = ''
  if (role.superuser) {
    roleExtra = role.configuredLimit != null ? `superuser (its limit ${role.configuredLimit} does not apply)` : 'superuser'
  }
  out += limitLine(`role ${role.name}`, role.used, role.limit, roleExtra, width)
  const s = doc.server
  const reserved = s.superuserReservedConnections + s.reservedConnections
  out += limitLine('server', s.used, s.limit, `max_connections ${s.maxConnections} - ${reserved} reserved`, width)
  out += "  (not counting this doctor's own connection)\n\n"

  out += `Connections: ${doc.connections.length}\n`
  if (doc.groups.length === 0) {
    out += '  (none besides this doctor)\n'
  } else {
    const problemPids = new Set(doc.problems.filter((p) => p.backendPid != null).map((p) => p.backendPid))
    const rows = doc.groups.map((g) => ({
      flag: g.backendPids.some((pid) => problemPids.has(pid)) ? '!' : ' ',
      cells: [
        appLabel(g.application),
        g.clientAddr || (g.state === 'hidden' ? '?' : 'local'),
        ownerLabel(g),
        stateLabel(g.state),
        String(g.count),
        duration(g.longestSeconds),
      ],
    }))
    out += table(
      [
        { header: 'APPLICATION', min: 8 },
        { header: 'CLIENT', min: 9 },
        { header: 'OWNER', min: 10 },
        { header: 'STATE' },
        { header: 'N', align: 'right' },
        { header: 'FOR', align: 'right' },
      ],
      rows,
      width,
    )
    const legend = ['OWNER: the onepool process (pid@host) that opened the connection']
    const statuses = new Set(doc.groups.map(ownerLabel).map((l) => l.split(' ')[1]).filter(Boolean))
    if (statuses.has('gone')) legend.push('gone = it exited, the connection is orphaned')
    if (statuses.has('gone?')) legend.push('gone? = exited, not provably orphaned (see notes)')
    if (statuses.has('remote')) legend.push('remote = another host, not checked')
    legend.push('FOR: time in that state (longest in the row)')
    out += wrap(legend.join('; ') + '.', width, '  ')
  }
  out += '\n'

  if (doc.problems.length === 0) {
    out += 'No problems found.\n'
  } else {
    out += `Problems: ${doc.problems.length}\n`
    for (const p of doc.problems) out += wrap(p.message, width, '! ', '  ')
    const orphans = doc.problems.filter((p) => p.kind === 'orphaned').length
    if (orphans > 0 && !doc.killOrphans) {
      out += wrap(`Run "onepool doctor --kill-orphans" to terminate the orphaned ${orphans === 1 ? 'connection' : 'connections'}.`, width, '  ')
    }
  }
  if (doc.notes.length > 0) {
    out += '\nNotes\n'
    for (const n of doc.notes) out += wrap(n, width, '- ', '  ')
  }
  return out
}

function renderTerminated(doc, { width = 80 } = {}) {
  width = Math.max(60, width)
  const t = doc.terminated
  if (t.length === 0) return '\n--kill-orphans: no orphaned connections, nothing terminated.\n'
  const done = t.filter((e) => e.result === 'terminated').length
  let out = `\n--kill-orphans: terminated ${done} of ${plural(t.length, 'orphaned connection')}\n`
  for (const e of t) {
    const what = e.result === 'terminated' ? 'terminated' : `${e.result}${e.error ? ': ' + e.error : ''}`
    out += wrap(`backend ${e.backendPid} (${appLabel(e.application)}, owner ${e.owner}): ${what}`, width, '  ', '    ')
  }
  return out
}

module.exports = { renderText, renderTerminated, wrap, table }
