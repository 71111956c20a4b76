// Loaded into a node process with NODE_OPTIONS=--require (test/train/allocator.test.ts): appends a line
// to $LUNGPATH_ALLOCATOR_PROBE each time a process image starts and when the process exits, so a
// test sees how many times a CLI started (re-executed or not), under which pid and allocator, with
// which node flags and arguments. NODE_OPTIONS survives the re-execution (bin/allocator.js keeps the environment).
const { appendFileSync, readFileSync } = require('node:fs');

const file = process.env.LUNGPATH_ALLOCATOR_PROBE;
const allocator = () => (readFileSync('/proc/self/maps', 'utf8').includes('libjemalloc') ? 'jemalloc' : 'system');
const record = (event) => appendFileSync(file, `${JSON.stringify({ event, pid: process.pid, allocator: allocator(), execArgv: process.execArgv, argv: process.argv.slice(2) })}\n`);
if (file && require('node:worker_threads').isMainThread) {
  record('start');
  process.on('exit', () => record('exit'));
}
