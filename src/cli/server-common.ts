/**
 * Small helpers shared by the `peerlink-server` command's modules.
 *
 * @module
 */
import { hostname } from 'node:os'

/** Loopback addresses `--loopback` (and `npm start`) uses: two, so RFC 5780 works. */
export const LOOPBACK_HOSTS = ['127.0.0.1', '127.0.0.2'] as const

/** An address as a URL host (IPv6 in brackets). */
export function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host
}

/** The address to print for a listening host: a wildcard becomes this machine's name. */
export function displayHost(host: string): string {
  return host === '0.0.0.0' || host === '::' ? hostname() : host
}
