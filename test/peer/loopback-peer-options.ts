/** Peer options of the loopback peer tests: gather only 127.0.0.1, and pace ICE fast. */
export const LOOPBACK = { hostAddresses: ['127.0.0.1'], includeLoopback: true } as const
export const FAST_ICE = { ta: 10, nominationDelay: 10 } as const
