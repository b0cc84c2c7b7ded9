'use strict'
// Prisma's queryables on onepool: the adapter (one per connect()), and its transactions pinned to
// one checked-out client.

const { columnType, mapArg, PARSERS, PRISMA_TYPES, FIRST_NORMAL_OBJECT_ID } = require('./conversion')
const { DriverAdapterError, adapterError } = require('./errors')

const ADAPTER_NAME = 'onepool/prisma'


const ISOLATION_LEVELS = new Set(['READ UNCOMMITTED', 'READ COMMITTED', 'REPEATABLE READ', 'SERIALIZABLE'])

/** Savepoint names come from Prisma (`prisma_sp_0`); anything else is quoted as an identifier. */
const savepoint = (name) => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) ? name : '"' + String(name).replace(/"/g, '""') + '"')

class OnepoolQueryable {
  #target
  #options

  constructor(target, options) {
    this.provider = 'postgres'
    this.adapterName = ADAPTER_NAME
    this.#target = target
    this.#options = options
  }

  /** @internal the pool or client to run on, or an error when this queryable is closed */
  _runner() {
    return this.#target
  }

  /** @internal */
  _address() {
    return this.#options.address()
  }

  async _perform(query) {
    const runner = this._runner()
    const args = query.args || []
    const argTypes = query.argTypes || []
    const values = args.map((arg, i) => mapArg(arg, argTypes[i]))
    let result
    try {
      result = await runner.query({ text: query.sql, values, rowMode: 'array', types: PRISMA_TYPES })
    } catch (e) {
      throw adapterError(e, this._address())
    }
    // A parameterless text with several statements gives one result each; report the last.
    return Array.isArray(result) ? result[result.length - 1] : result
  }

  async queryRaw(query) {
    const { fields, rows } = await this._perform(query)
    const columnNames = fields.map((f) => f.name)
    const columnTypes = fields.map((f) => columnType(f.dataTypeID))
    const udt = this.#options.userDefinedTypeParser
    if (udt) {
      for (let i = 0; i < fields.length; i++) {
        const oid = fields[i].dataTypeID
        if (oid < FIRST_NORMAL_OBJECT_ID || PARSERS[oid]) continue
        for (const row of rows) row[i] = await udt(oid, row[i], this)
      }
    }
    return { columnNames, columnTypes, rows }
  }

  async executeRaw(query) {
    return (await this._perform(query)).rowCount ?? 0
  }
}

class OnepoolTransaction extends OnepoolQueryable {
  #client
  #done = false
  #onClose

  constructor(client, options, onClose) {
    super(client, options)
    this.#client = client
    this.#onClose = onClose
    // startTransaction() sent BEGIN; Prisma's engine sends COMMIT or ROLLBACK itself (through
    // executeRaw), and commit()/rollback() then only give the connection back.
    this.options = { usePhantomQuery: false }
  }

  _runner() {
    if (this.#done) {
      throw new DriverAdapterError({ kind: 'TransactionAlreadyClosed', cause: 'the transaction was already committed or rolled back' })
    }
    return this.#client
  }

  async commit() {
    await this.#close()
  }

  async rollback() {
    await this.#close()
  }

  async createSavepoint(name) {
    await this.executeRaw({ sql: `SAVEPOINT ${savepoint(name)}`, args: [], argTypes: [] })
  }

  async rollbackToSavepoint(name) {
    await this.executeRaw({ sql: `ROLLBACK TO SAVEPOINT ${savepoint(name)}`, args: [], argTypes: [] })
  }

  async releaseSavepoint(name) {
    await this.executeRaw({ sql: `RELEASE SAVEPOINT ${savepoint(name)}`, args: [], argTypes: [] })
  }

  /** Gives the connection back; onepool rolls back a transaction that is still open on it. */
  async #close() {
    if (this.#done) return
    this.#done = true
    this.#onClose(this)
    await this.#client.release()
  }
}

class OnepoolAdapter extends OnepoolQueryable {
  #pool
  #options
  #open = new Set()
  #disposed = false

  constructor(pool, options) {
    super(pool, options)
    this.#pool = pool
    this.#options = options
  }

  _runner() {
    if (this.#disposed) {
      throw new Error('onepool/prisma: this adapter was disposed (PrismaClient.$disconnect()); the PrismaClient connects a new one')
    }
    return this.#pool
  }

  async executeScript(script) {
    // No parameters: one simple-protocol query, which runs every statement (and does not split
    // a string literal or a function body on its ';').
    await this._perform({ sql: script, args: [], argTypes: [] })
  }

  async startTransaction(isolationLevel) {
    let begin = 'BEGIN'
    if (isolationLevel !== undefined) {
      const level = String(isolationLevel).toUpperCase()
      if (!ISOLATION_LEVELS.has(level)) throw new DriverAdapterError({ kind: 'InvalidIsolationLevel', level: String(isolationLevel) })
      begin += ` ISOLATION LEVEL ${level}`
    }
    const pool = this._runner()
    let client
    try {
      client = await pool.connect()
    } catch (e) {
      throw adapterError(e, this._address())
    }
    try {
      await client.query(begin)
    } catch (e) {
      await client.release(true).catch(() => {})
      throw adapterError(e, this._address())
    }
    const tx = new OnepoolTransaction(client, this.#options, (t) => this.#open.delete(t))
    this.#open.add(tx)
    return tx
  }

  getConnectionInfo() {
    return { schemaName: this.#options.schema, supportsRelationJoins: true }
  }

  /**
   * PrismaClient.$disconnect(): gives back the connections of transactions still open (they are
   * rolled back). The native pool stays open: it belongs to the whole process, and other
   * PrismaClients (every hot reload makes one) and createPool() handles are using it. Idle
   * connections close after `idleTimeoutMs`; `pool.end()` or `closeAll()` closes it for everyone.
   */
  async dispose() {
    if (this.#disposed) return
    this.#disposed = true
    await Promise.allSettled([...this.#open].map((tx) => tx.rollback()))
  }

  /** The onepool Pool this adapter runs on. */
  underlyingDriver() {
    return this.#pool
  }
}

module.exports = { OnepoolAdapter, ADAPTER_NAME }
