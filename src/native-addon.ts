/**
 * Loading peerlink's optional native addons (`native/`, built by `npm install` when a C
 * compiler is present: `scripts/build-native.mjs`).
 *
 * @module
 */
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

/**
 * The addon `native/build/Release/<name>.node` of this package, or undefined when it is
 * not built, cannot be loaded, or the environment variable `disableWith` is `0`.
 *
 * @internal
 * @example
 * ```ts
 * const relay = loadNativeAddon<NativeUdpRelay>('peerlink_udp_relay', 'PEERLINK_NATIVE_RELAY')
 * ```
 */
export function loadNativeAddon<T>(name: string, disableWith: string): T | undefined {
  if (process.env[disableWith] === '0') return undefined
  // This module is src/native-addon.ts or dist/native-addon.js: one level below the package root.
  const file = fileURLToPath(new URL(`../native/build/Release/${name}.node`, import.meta.url))
  if (!existsSync(file)) return undefined
  try {
    return createRequire(import.meta.url)(file) as T
  } catch {
    return undefined
  }
}
