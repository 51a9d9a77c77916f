/**
 * What a tunnel server holds locally for one device, online or retained: its name, its
 * public ports, its HTTP service, its control session and its open connections.
 *
 * @module
 */
import type { TunnelPortMapping } from '../../tunnel/tunnel-messages.js'
import type { ControlSession } from './control-session.js'
import type { PublicPort } from './public-port.js'

/** One device on this server (see the module notes). */
export class TunnelDevice {
  /** `peer:<PeerId>` or `token:<hash>`. */
  readonly key: string
  /** Its name (set on admission). */
  name = ''
  /** The local port of its HTTP service, 0 for none. */
  http = 0
  /** Its public ports, by local port, in the order the device listed them. */
  ports = new Map<number, PublicPort>()
  /** The control session while online. */
  session: ControlSession | undefined
  /** When its name and ports expire (ms since the epoch); `null` while online. */
  expiresAt: number | null = null
  /** The timer that frees them at `expiresAt`. */
  expiryTimer: ReturnType<typeof setTimeout> | undefined
  /** Tunnelled connections waiting or open. */
  connections = 0

  constructor(key: string) {
    this.key = key
  }

  /** True while its control socket is logged in. */
  get online(): boolean {
    return this.session !== undefined
  }

  /** Its port mappings, as sent in `welcome`. */
  mappings(): TunnelPortMapping[] {
    return [...this.ports.values()].map((p) => ({ local: p.local, public: p.port }))
  }
}
