/**
 * The list of registered `peerlink` commands, sorted by name.
 *
 * @module
 */
import type { CliCommand } from '../command.js'
import * as registry from './registry.js'

/** Every `peerlink` command, sorted by name. */
export const commands: readonly CliCommand[] = Object.freeze(
  Object.values(registry satisfies Record<string, CliCommand>).sort((a, b) => a.name.localeCompare(b.name)),
)

for (let i = 1; i < commands.length; i++) {
  if (commands[i]!.name === commands[i - 1]!.name) throw new Error(`two commands are named "${commands[i]!.name}"`)
}

/** The command called `name`, if any. */
export function findCommand(name: string): CliCommand | undefined {
  return commands.find((command) => command.name === name)
}
