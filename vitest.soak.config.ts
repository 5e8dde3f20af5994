import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/soak/**/*.test.ts'],
    // Soak tests run the compiled CLI too: compile first when src/ is newer than dist/.
    globalSetup: ['test/helpers/global-build.ts'],
    testTimeout: 30 * 60_000,
    hookTimeout: 5 * 60_000,
    pool: 'forks',
    maxWorkers: 1
  }
})
