const { Kysely } = require('kysely')
const { onepoolDialect } = require('onepool/kysely')

// Kysely's PostgresDialect on onepool's pool (createPool() options, or a pool).
const db = new Kysely({ dialect: onepoolDialect({ max: 5 }) })

module.exports = { db }
