/**
 * peerlink's reference servers, to run programmatically (the `peerlink-server` command
 * runs the same code). This release has the STUN server with RFC 5780 NAT behaviour
 * discovery; the Beacon, TURN and tunnel servers follow.
 *
 * @example
 * ```ts
 * import { StunServer } from 'peerlink/server'
 *
 * const stun = await StunServer.listen({ host: '127.0.0.1', port: 3478, alternateHost: '127.0.0.2' })
 * console.log(`stun:${stun.primary.host}:${stun.primary.port}`)
 * process.once('SIGINT', () => stun.close())
 * ```
 *
 * @packageDocumentation
 */
export { StunServer, type StunServerOptions, type StunServerStats } from './stun/stun-server.js'
export { RateLimiter, type RateLimiterOptions } from './stun/rate-limiter.js'
