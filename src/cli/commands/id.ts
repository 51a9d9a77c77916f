/**
 * `peerlink id`: print this peer's PeerId.
 *
 * @module
 */
import { loadOrCreateIdentityFile } from '../../identity/key-file.js'
import type { CliCommand } from '../command.js'
import { writeJsonLine } from '../io.js'

/** `peerlink id [--key FILE] [--json]` */
export const idCommand: CliCommand = {
  name: 'id',
  summary: "print this peer's PeerId, creating the key file if missing",
  usage: `peerlink id [--key FILE] [--json]

Prints the PeerId (12D3KooW…) of the identity in the key file. When the file does
not exist, a new identity is created and saved there with mode 0600 (a notice goes
to stderr). With --json, prints {"peerId":"…","keyFile":"…","created":true|false}.`,
  async run({ common }, io) {
    const { identity, path, created } = await loadOrCreateIdentityFile(common.keyFile, { signal: io.signal })
    if (common.json) {
      if (created) writeJsonLine(io.stderr, { event: 'key-created', keyFile: path, peerId: identity.peerId })
      writeJsonLine(io.stdout, { peerId: identity.peerId, keyFile: path, created })
    } else {
      if (created) io.stderr.write(`peerlink: created a new identity in ${path} (keep this file private and backed up)\n`)
      io.stdout.write(`${identity.peerId}\n`)
    }
    return 0
  },
}
