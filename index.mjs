// The ESM entry loads the CommonJS implementation with Node's own `require`, made here with
// createRequire rather than `import './index.js'`: a bundler or SSR loader that evaluates this
// file inline (Vite SSR when onepool is linked or in a workspace) would evaluate index.js inline
// too, where no `require` is in scope to load lib/ and the native addon.
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const onepool = require('./index.js')

export const {
  createPool,
  processStats,
  setProcessMaxConnections,
  closeAll,
  OnepoolError,
  isOnepoolError,
  errorCodes,
  Pool,
  PoolClient,
  Result,
  Cursor,
  QueryStream,
  types,
  defaults,
} = onepool
export default onepool
