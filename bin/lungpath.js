#!/usr/bin/env node
// The lungpath CLI: runs the built JavaScript in dist/ (`npm run build`; `npm run setup` builds).
// LUNGPATH_FROM_SOURCE=1 runs the TypeScript sources through tsx instead (a development
// dependency): the test suite sets it, so spawned CLIs test the same code as the tests.
// The long commands first re-execute themselves under jemalloc when it is installed (same pid,
// flags and arguments; ./allocator.js says why, and LUNGPATH_ALLOCATOR=system turns it off); help,
// `slide` (information only) and unknown commands start at once on the system allocator.
const LONG_COMMANDS = new Set(['train', 'evaluate', 'predict', 'predict-slide', 'tiles', 'synth']);
const args = process.argv.slice(2);
if (LONG_COMMANDS.has(args[0]) && !args.includes('--help') && !args.includes('-h')) {
  const { reexecUnderJemalloc } = await import('./allocator.js');
  reexecUnderJemalloc(); // returns only where it does not apply or fails: then the system allocator
}
if (process.env.LUNGPATH_FROM_SOURCE === '1') {
  const { register } = await import('tsx/esm/api');
  register();
  const { main } = await import('../src/cli.ts');
  process.exitCode = await main(args);
} else {
  let cli;
  try {
    cli = await import('../dist/cli.js');
  } catch (e) {
    if (e?.code !== 'ERR_MODULE_NOT_FOUND' || !String(e.message).includes('dist/cli.js')) throw e;
    console.error('lungpath: dist/cli.js is missing: run `npm run build` (or `npm run setup`) in the lungpath folder first');
    process.exit(1);
  }
  process.exitCode = await cli.main(args);
}
