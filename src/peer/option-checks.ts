/**
 * Checks of the peer's numeric options, shared by `Peer` and the tunnel path.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js'

/**
 * `value` when it is a positive, finite number of milliseconds; `fallback` when it is
 * `undefined`.
 *
 * @throws InvalidArgumentError naming `name` otherwise.
 */
export function positiveMs(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw new InvalidArgumentError(`${name} must be a positive number of milliseconds`)
  return value
}
