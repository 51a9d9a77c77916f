/**
 * The main stream of a new connection: the one the connecting side opens with
 * {@link MAIN_STREAM_LABEL} on the stream multiplexer ({@link openMainStream}), and the
 * listening side waits for ({@link firstMainStream}).
 *
 * @module
 */
import type { MuxStream } from '../connection/mux-stream.js'
import { StreamMux } from '../connection/stream-mux.js'
import { ConnectFailedError } from '../errors.js'
import type { SecureConnection } from '../transport/secure-connection.js'
import { MAIN_STREAM_LABEL } from './peer-connection.js'
import { untilAborted } from '../abortable.js'

/**
 * The multiplexer and main stream of the connecting side, opened at verification, and
 * the streams the listener opens before the connection exists (emitted as `stream`
 * soon after it does); `stop()` ends the collecting.
 */
export interface OpenedMainStream {
  secure: SecureConnection
  mux: StreamMux
  main: MuxStream
  early: MuxStream[]
  stop: () => void
}

/** Opens the multiplexer on `secure` and the main stream on it (the connecting side). */
export function openMainStream(secure: SecureConnection): OpenedMainStream {
  const mux = new StreamMux(secure, { isInitiator: true })
  const main = mux.openStream({ label: MAIN_STREAM_LABEL })
  // Until the connection takes them over: a failure before the listener's confirmation
  // rejects the handshake, and these only follow it.
  mux.on('error', noop)
  main.on('error', noop)
  const early: MuxStream[] = []
  const onStream = (stream: MuxStream): void => void early.push(stream)
  mux.on('stream', onStream)
  return { secure, mux, main, early, stop: () => mux.off('stream', onStream) }
}

/**
 * The listening side's main stream: the one the connecting side opens with
 * {@link MAIN_STREAM_LABEL}. Streams that arrive after it, before the connection takes
 * over the `stream` event (the same data chunk can carry their open frames), are kept
 * in `early`; `stop()` ends the collecting.
 */
export function firstMainStream(mux: StreamMux, signal: AbortSignal): Promise<{ main: MuxStream; early: MuxStream[]; stop: () => void }> {
  return untilAborted(
    new Promise((resolve, reject) => {
      let main: MuxStream | undefined
      const early: MuxStream[] = []
      const onStream = (stream: MuxStream): void => {
        if (main !== undefined) early.push(stream)
        else if (stream.label === MAIN_STREAM_LABEL) {
          main = stream
          resolve({ main, early, stop: () => mux.off('stream', onStream) })
        }
      }
      mux.on('stream', onStream)
      mux.once('close', () => reject(new ConnectFailedError('The session closed before the main stream opened')))
    }),
    signal,
  )
}

function noop(): void {}
