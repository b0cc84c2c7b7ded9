const { drizzle } = require('drizzle-orm/node-postgres')
const { createPool } = require('onepool')

// Drizzle's node-postgres driver accepts onepool's pg-compatible Pool as its client.
const db = drizzle({ client: createPool({ max: 5 }) })

module.exports = { db }
