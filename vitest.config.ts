import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/soak/**', 'node_modules/**'],
    // Process tests run the compiled CLI: compile first when src/ is newer than dist/.
    globalSetup: ['test/helpers/global-build.ts'],
    // Multi-node tests start real processes and sockets: give them room, and
    // keep files from competing for the machine's two cores.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
    fileParallelism: true,
    reporters: ['default']
  }
})
