const { Kysely, PostgresDialect } = require('kysely')
const { createPool } = require('onepool')

// Kysely's PostgresDialect takes any pg-compatible pool: give it onepool's.
const db = new Kysely({
  dialect: new PostgresDialect({ pool: createPool({ max: 5 }) }),
})

module.exports = { db }
