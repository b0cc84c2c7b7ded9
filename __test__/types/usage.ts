// Compiled by `npm run typecheck` (tsc --noEmit): the public typings as a user writes against them.
import { createPool, defaults, isOnepoolError, processStats, setProcessMaxConnections, Cursor, QueryStream, type Notice, type PoolClient } from 'onepool'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'

interface User {
  id: number
  email: string
}

export const db = createPool({ max: 5, idleTimeoutMillis: 10_000, applicationName: 'web' })
export const other = createPool(process.env.DATABASE_URL ?? 'postgres://localhost/app')

export async function handler(): Promise<User | undefined> {
  const { rows, rowCount, fields } = await db.query<User>('select id, email from users where id = $1', [1])
  const n: number | null = rowCount
  const name: string = fields[0].name
  void n
  void name
  const arr = await db.query<[number, string]>({ text: 'select 1, $1::text', values: ['x'], rowMode: 'array' })
  const first: number = arr.rows[0][0]
  void first
  const ac = new AbortController()
  await db.query('select pg_sleep(1)', [], { signal: ac.signal })
  const count = await db.transaction(async (tx: PoolClient) => {
    await tx.query('insert into users(email) values ($1)', ['a@b.c'])
    return tx.transaction(async (inner) => (await inner.query<{ n: number }>('select count(*)::int as n from users')).rows[0].n)
  }, { isolationLevel: 'serializable' })
  const total: number = count
  void total
  const client = await db.connect()
  try {
    await client.query('select 1')
  } finally {
    await client.release()
  }
  const users = await db.sql<User>`select id, email from users where id = ${1} and email in ${db.sql.inList(['a', 'b'])}`
  const firstEmail: string = users[0].email
  const affected: number | null = users.rowCount
  void firstEmail
  void affected
  await db.sql`select * from ${db.sql.ident('public', 'users')} where ${db.sql.fragment`id = ${2}`}`
  const none = db.sql.inList([], 'int8')
  const byId = db.sql.fragment`select * from users where id not in ${none}`
  const compiled: { text: string; values: unknown[] } = db.sql.compile(byId)
  void compiled
  await db.sql<User>(byId)
  // @ts-expect-error a look-alike object is not a fragment
  db.sql.compile({ strings: ['select 1'], values: [] })
  // @ts-expect-error text is never SQL: sql.fragment is a tag
  db.sql.fragment('id = 1')
  for await (const u of db.stream<User>('select id, email from users', [], { batchSize: 500, signal: ac.signal })) {
    const email: string = u.email
    void email
  }
  const cursor = db.cursor<User>('select * from users')
  const some: User[] = await cursor.read(100)
  void some
  await cursor.close()
  const viaQuery: Cursor<User> = client.query(new Cursor<User>('select * from users', []))
  await viaQuery.close()
  for await (const row of client.query(new QueryStream<User>('select * from users', [], { batchSize: 100 }))) void row.id
  const { rowCount: copied } = await db.copyFrom('copy users from stdin', ['1\ta@b.c\n'])
  const copiedRows: number = copied
  void copiedRows
  await pipeline(Readable.from(['2\tb@c.d\n']), db.copyFrom('copy users from stdin'))
  for await (const chunk of db.copyTo('copy users to stdout (format csv)')) {
    const bytes: Buffer = chunk
    void bytes
  }
  const s = db.stats()
  const inUse: number = s.inUse + processStats().budget.used
  void inUse
  setProcessMaxConnections(8)
  // node-postgres's client surface: notices, per-client type parsers, named statements, parseInt8
  defaults.parseInt8 = true
  const pinned = await db.connect()
  pinned.on('notice', (n: Notice) => console.log(n.severity, n.message))
  pinned.setTypeParser(20, (v) => BigInt(v))
  pinned.setTypeParser(1700, 'text', Number)
  const parse: (value: string) => any = pinned.getTypeParser(20)
  void parse
  await pinned.query({ name: 'by-id', text: 'select * from users where id = $1', values: [1] })
  await pinned.query({ name: 'by-id', values: [2] })
  await pinned.end()
  try {
    await db.query('select 1')
  } catch (e) {
    if (isOnepoolError(e) && e.code === 'POOL_TIMEOUT') return undefined
    if (isOnepoolError(e) && e.code === '23505') console.log(e.constraint, e.detail)
  }
  return rows[0]
}

// LISTEN/NOTIFY: a module-scope subscription, its options, and notify.
const orders = createPool({ max: 5, listenUrl: 'postgres://direct/app' }).listen(
  'orders',
  (n) => {
    const id: number = JSON.parse(n.payload).id
    void [id, n.channel, n.processId]
  },
  {
    key: 'orders-cache',
    onReconnect: ({ since, attempts, cause }) => void [since.getTime(), attempts, cause.code],
    onError: (err) => console.error(err),
  },
)
export async function listenUsage(): Promise<void> {
  await orders.ready
  orders.ref().unref()
  orders.unlisten()
  await db.notify('orders', JSON.stringify({ id: 1 }))
  const listening: number = db.stats().listening
  void listening
  // @ts-expect-error the payload is a string: JSON.stringify objects first
  await db.notify('orders', { id: 1 })
}
