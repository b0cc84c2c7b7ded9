#!/usr/bin/env node
'use strict'
// The onepool command line: `onepool doctor` (see cli/doctor.js).

const COMMANDS = {
  doctor: () => require('../cli/doctor'),
}

const HELP = `Usage: onepool <command> [options]

Commands:
  doctor    who holds connections on the database, and what is wrong
            (orphaned onepool connections, idle transactions, limits)

Run "onepool <command> --help" for a command's options.`

async function main(argv) {
  const [command, ...rest] = argv
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(HELP + '\n')
    return command === undefined ? 2 : 0
  }
  if (command === '--version' || command === '-v') {
    process.stdout.write(require('../package.json').version + '\n')
    return 0
  }
  const load = Object.prototype.hasOwnProperty.call(COMMANDS, command) ? COMMANDS[command] : null
  if (!load) {
    process.stderr.write(`onepool: unknown command ${JSON.stringify(command)}\n\n${HELP}\n`)
    return 2
  }
  return load().run(rest)
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  (err) => {
    process.stderr.write(`onepool: ${err && err.stack ? err.stack : err}\n`)
    process.exitCode = 2
  },
)
