const { drizzle } = require('onepool/drizzle')

// Drizzle's node-postgres driver on onepool's pool (createPool() options, or a pool).
const db = drizzle({ max: 5 })

module.exports = { db }
