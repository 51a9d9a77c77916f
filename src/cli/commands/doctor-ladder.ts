/**
 * `peerlink doctor`'s verdict: from what the probes found (UDP to STUN servers, the NAT's
 * mapping, TURN per transport, tunnel reachability), which step of the connection ladder
 * a connection from this machine would most likely use, and why. It is a prediction
 * about this side only: the other peer's network decides too (two endpoint-dependent
 * NATs need a relay, for example).
 *
 * @module
 */
import type { NatMappingBehavior } from '../../stun/nat-behavior-discovery.js'
import type { DoctorTurnReport } from './doctor-turn.js'
import type { DoctorTunnelReport } from './doctor-tunnel.js'

/** The ladder steps, best first; `none` when no configured path works from here. */
export type DoctorLadderStep = 'direct' | 'turn-udp' | 'turn-tcp' | 'turn-tls' | 'tunnel' | 'none'

/** The verdict. */
export interface DoctorLadderVerdict {
  /** The step a connection would most likely end on. */
  likely: DoctorLadderStep
  /** Every step that works from here, best first. */
  available: DoctorLadderStep[]
  /** One sentence on why. */
  reason: string
}

/** What {@link predictLadder} looks at. */
export interface DoctorLadderInput {
  /** Whether any STUN server (or Beacon UDP port) answered over UDP. */
  udpReachable: boolean
  /** Whether any STUN server was configured at all (UDP untested otherwise). */
  udpTested: boolean
  /** The NAT's mapping, from RFC 5780 discovery or from different servers seeing different ports. */
  mapping: NatMappingBehavior | undefined
  /** TURN probes. */
  turn: readonly DoctorTurnReport[]
  /** Tunnel probes. */
  tunnels: readonly DoctorTunnelReport[]
}

const TURN_STEPS = { udp: 'turn-udp', tcp: 'turn-tcp', tls: 'turn-tls' } as const

/** Predicts the ladder step from the probes' results. */
export function predictLadder(input: DoctorLadderInput): DoctorLadderVerdict {
  const available: DoctorLadderStep[] = []
  const hardNat = input.mapping === 'address-dependent' || input.mapping === 'address-and-port-dependent'
  if (input.udpReachable) available.push('direct')
  for (const step of ['udp', 'tcp', 'tls'] as const) {
    // A TURN server that answers is usable once credentials are right; one that only
    // refused them is reported as available but flagged in the reason.
    if (input.turn.some((server) => server.transports.some((t) => t.transport === step && t.reachable))) available.push(TURN_STEPS[step])
  }
  if (input.tunnels.some((tunnel) => tunnel.reachable)) available.push('tunnel')
  const turnAuthFailed = input.turn.some((server) => server.transports.some((t) => t.reachable && !t.allocated))
  const credentialsNote = turnAuthFailed ? ' (a TURN server answered but refused the credentials: fix them for the relay to work)' : ''
  const firstRelay = available.find((step) => step.startsWith('turn-') || step === 'tunnel')
  if (input.udpReachable && !hardNat) {
    return {
      likely: 'direct',
      available,
      reason:
        input.mapping === 'no-nat'
          ? 'UDP works and this machine has a public address: direct connections need no punching.'
          : 'UDP works and the NAT maps endpoint-independently (or its mapping is unknown): hole punching should succeed against most peers.',
    }
  }
  if (input.udpReachable && hardNat) {
    if (firstRelay !== undefined) {
      return {
        likely: firstRelay,
        available,
        reason: `UDP works but the NAT maps endpoint-dependently: punching succeeds only against peers with an easy NAT or none; against others the connection falls back to ${firstRelay}${credentialsNote}.`,
      }
    }
    return {
      likely: 'direct',
      available,
      reason: 'UDP works but the NAT maps endpoint-dependently and no relay answered: peers behind hard NATs will be unreachable. Configure a TURN server.',
    }
  }
  if (firstRelay !== undefined) {
    const why = input.udpTested ? 'No STUN server answered over UDP (UDP looks blocked)' : 'No STUN server is configured, so UDP was not tested'
    return { likely: firstRelay, available, reason: `${why}: the connection will use ${firstRelay}${credentialsNote}.` }
  }
  return {
    likely: 'none',
    available,
    reason: input.udpTested
      ? 'Nothing answered: UDP looks blocked and no TURN or tunnel server could be reached. Check the firewall or configure a tunnel server on port 443.'
      : 'No server is configured or reachable: give --stun, --turn or --tunnel (or a --config file).',
  }
}
