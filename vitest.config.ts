import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    setupFiles: ['test/setup/no-leaked-handles.ts'],
    // Network tests bind real sockets; keep parallelism modest on 2-core CI machines.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    projects: [
      { extends: true, test: { name: 'peerlink', include: ['test/**/*.test.ts'] } },
      // The TURN server again with its JavaScript data path, as on machines where the
      // optional native one (native/udp_relay.c) could not be built.
      {
        extends: true,
        test: {
          name: 'js-relay',
          include: ['test/server/turn/{turn-server,native-relay,uclient,legacy-channel-framing}.test.ts'],
          env: { PEERLINK_NATIVE_RELAY: '0' },
        },
      },
    ],
  },
})
