/**
 * The `peerlink` commands: one line per command. To add one, write
 * `src/cli/commands/<name>.ts` exporting a `CliCommand` and add its line here.
 * Every export of this module must be a `CliCommand`.
 *
 * @module
 */
export { idCommand } from './id.js'
export { doctorCommand } from './doctor.js'
export { exposeCommand } from './expose.js'
export { listenCommand } from './listen.js'
export { connectCommand } from './connect.js'
