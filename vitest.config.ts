import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (path: string) => fileURLToPath(new URL(`./src/${path}`, import.meta.url));


export default defineConfig({
  // The package's own entry points, as examples/ import them, resolved to the sources (not dist/).
  resolve: {
    alias: [
      { find: /^lungpath$/, replacement: src('index.ts') },
      { find: /^lungpath\/kernels$/, replacement: src('kernels/index.node.ts') },
      { find: /^lungpath\/nn$/, replacement: src('nn/index.ts') },
      { find: /^lungpath\/train$/, replacement: src('train/index.ts') },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    // lavapipe compiles each shader with LLVM on first use: slow on 2 cores.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Two CPU cores run lavapipe's threads; more than two test files at once only thrashes.
    maxWorkers: 2,
    // `lungpath train` autotunes kernels by default; tests run the heuristic versions (fast, the same
    // on every run) unless a test asks for a mode. CLI child processes inherit it.
    // LUNGPATH_FROM_SOURCE: a spawned `bin/lungpath.js` runs src/ through tsx, not dist/, so the CLI
    // tests test the same code as the rest of the suite.
    env: { LUNGPATH_KERNELS: 'heuristic', LUNGPATH_FROM_SOURCE: '1' },
  },
});
