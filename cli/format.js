'use strict'
// Small formatting helpers shared by the analysis (problem messages) and the text report.

/** 0.4 → "0s", 75 → "1m15s", 7384 → "2h03m", 200000 → "2d07h"; null → "-". */
function duration(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return '-'
  const s = Math.max(0, Math.floor(seconds))
  const pad = (n) => String(n).padStart(2, '0')
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`
  if (s < 86400) return `${Math.floor(s / 3600)}h${pad(Math.floor((s % 3600) / 60))}m`
  return `${Math.floor(s / 86400)}d${pad(Math.floor((s % 86400) / 3600))}h`
}

/** plural(1, 'connection') → "1 connection", plural(2, 'connection') → "2 connections". */
function plural(n, word, many = word + 's') {
  return `${n} ${n === 1 ? word : many}`
}

/** An application name as shown to people: the empty name is "(none)". */
function appLabel(name) {
  return name ? name : '(none)'
}

/** Cuts `text` to `width` columns, marking the cut with "…". */
function cut(text, width) {
  const chars = Array.from(String(text))
  if (chars.length <= width) return chars.join('')
  if (width <= 1) return chars.slice(0, width).join('')
  return chars.slice(0, width - 1).join('') + '…'
}

/** Display width of a string (code points; the report uses no wide characters). */
function width(text) {
  return Array.from(String(text)).length
}

module.exports = { duration, plural, appLabel, cut, width }
