import onepool from './index.js'

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
  types,
} = onepool
export default onepool
