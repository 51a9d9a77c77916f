/**
 * The connection layer: independent streams over one verified connection
 * ({@link StreamMux}; wire format in `docs/stream-mux.md`).
 *
 * @module
 */
export { StreamMux } from './stream-mux.js'
export type { StreamMuxOptions, OpenStreamOptions, StreamMuxCloseOptions, MuxPingOptions, StreamMuxEvents } from './stream-mux.js'
export { MuxStream } from './mux-stream.js'
export type { MuxStreamDirection } from './mux-stream.js'
export {
  MUX_VERSION,
  FRAME_HEADER_LENGTH,
  MAX_FRAME_PAYLOAD,
  MAX_LABEL_LENGTH,
  DEFAULT_WINDOW,
  encodeFrame,
} from './mux-frame.js'
export type { MuxFrame, MuxControlFrame, MuxFrameType, ResetReason, GoAwayCode } from './mux-frame.js'
export { MuxFrameDecoder } from './mux-frame-decoder.js'
export type { MuxFrameDecoderHandler } from './mux-frame-decoder.js'
