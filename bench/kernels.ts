/**
 * `npm run bench`: every lungpath kernel, forward and backward, at the seed network's shapes, and
 * one training step of the tiny and seed patch networks — each beside the same operation through
 * TensorFlow.js's WebGPU backend on the same Dawn adapter, in one run, with the ratio.
 * The adapter's FMA and copy ceilings come first, and our rows say what % of them they reach.
 *
 * Both sides are timed the same way by tinybench: one launch, then wait for the GPU
 * (`rt.sync()` / TF.js's submit + onSubmittedWorkDone); the first launch (shader compilation) is
 * not timed; the figure is the median. Nothing is read back.
 *
 *   npm run bench                   # table on stdout
 *   npm run bench -- --json         # one JSON object per row: name, ours, tfjs, unit, ratio, …
 *   npm run bench -- --markdown     # the table as Markdown (for BENCHMARKS.md)
 *   npm run bench -- --only conv    # rows whose name contains "conv"
 *   npm run bench -- --quick        # fewer samples
 *   npm run bench -- --no-tfjs      # ours only
 */
import { parseArgs } from 'node:util';
import { Bench } from 'tinybench';
import { describeAdapter } from '../src/kernels/device.ts';
import { createNodeRuntime, nodeGpu } from '../src/kernels/node.ts';
import { benchCases } from './cases.ts';
import { createTfjs, tfjsCases } from './tfjs.ts';

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    markdown: { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    'no-tfjs': { type: 'boolean', default: false },
  },
});

interface Row {
  name: string;
  shape: string;
  unit: 'GFLOP/s' | 'GB/s';
  ours: number | null;
  oursMs: number | null;
  tfjs: number | null;
  tfjsMs: number | null;
  ratio: number | null;
  ofCeiling: number | null;
  variant: string;
}

const log = values.json ? () => {} : console.log;

/** Median ms of `fn` (already warmed up), by tinybench. */
async function median(name: string, fn: () => Promise<void>): Promise<number> {
  const bench = new Bench({ time: values.quick ? 300 : 2000, iterations: values.quick ? 2 : 5, warmup: false, throws: true });
  bench.add(name, fn);
  await bench.run();
  const result = bench.getTask(name)?.result;
  return result && 'latency' in result ? result.latency.p50 : NaN;
}

const rt = await createNodeRuntime();
const adapter = describeAdapter(rt.adapter);
const date = new Date().toISOString().slice(0, 10);
const selected = (name: string) => !values.only || name.includes(values.only);

const rows = new Map<string, Row>();
const key = (name: string, shape: string) => `${name}|${shape}`;
const ceilings: Partial<Record<Row['unit'], number>> = {};

log(`lungpath kernel benchmark — ${date} — adapter: ${adapter}`);
for (const c of benchCases(rt).filter((c) => selected(c.name) || c.ceiling)) {
  const state = c.setup();
  c.run(state);
  await rt.sync();
  const ms = await median(c.name, async () => {
    c.run(state);
    await rt.sync();
  });
  c.teardown(state);
  const value = c.work / (ms * 1e6);
  const ceiling = ceilings[c.unit];
  if (c.ceiling) ceilings[c.unit] = value;
  rows.set(key(c.name, c.shape), { name: c.name, shape: c.shape, unit: c.unit, ours: value, oursMs: ms, tfjs: null, tfjsMs: null, ratio: null, ofCeiling: ceiling ? value / ceiling : null, variant: c.variant ?? '' });
  log(`  ours  ${c.name.padEnd(28)} ${ms.toFixed(3).padStart(10)} ms ${value.toFixed(2).padStart(8)} ${c.unit}`);
}

if (!values['no-tfjs']) {
  const ctx = await createTfjs(await nodeGpu());
  log(`TF.js ${ctx.version} WebGPU backend on ${ctx.adapter}`);
  for (const c of tfjsCases(ctx).filter((c) => selected(c.name))) {
    c.setup();
    await c.run();
    const ms = await median(c.name, () => c.run());
    c.teardown();
    const value = c.work / (ms * 1e6);
    const row = rows.get(key(c.name, c.shape));
    if (row) Object.assign(row, { tfjs: value, tfjsMs: ms, ratio: row.ours !== null ? row.ours / value : null });
    else rows.set(key(c.name, c.shape), { name: c.name, shape: c.shape, unit: c.unit, ours: null, oursMs: null, tfjs: value, tfjsMs: ms, ratio: null, ofCeiling: null, variant: '' });
    log(`  tfjs  ${c.name.padEnd(28)} ${ms.toFixed(3).padStart(10)} ms ${value.toFixed(2).padStart(8)} ${c.unit}`);
  }
}

const fmt = (v: number | null, digits = 2) => (v === null ? '—' : v.toFixed(digits));
const pct = (v: number | null) => (v === null ? '' : `${(100 * v).toFixed(0)}%`);
const all = [...rows.values()];
if (values.json) {
  for (const r of all) console.log(JSON.stringify({ ...r, adapter, date }));
} else if (values.markdown) {
  console.log(`\n| operation | shape | lungpath | TF.js | unit | ours / TF.js | % of ceiling | variant |\n|---|---|---:|---:|---|---:|---:|---|`);
  for (const r of all) console.log(`| ${r.name} | ${r.shape} | ${fmt(r.ours)} | ${fmt(r.tfjs)} | ${r.unit} | ${r.ratio === null ? '—' : `${r.ratio.toFixed(1)}×`} | ${pct(r.ofCeiling)} | ${r.variant} |`);
} else {
  console.log(`\n${'operation'.padEnd(30)} ${'shape'.padEnd(46)} ${'lungpath'.padStart(9)} ${'TF.js'.padStart(9)} unit     ${'ratio'.padStart(7)} ceil.`);
  for (const r of all) {
    const ratio = r.ratio === null ? '' : `${r.ratio.toFixed(1)}×`;
    console.log(`${r.name.padEnd(30)} ${r.shape.padEnd(46)} ${fmt(r.ours).padStart(9)} ${fmt(r.tfjs).padStart(9)} ${r.unit.padEnd(8)} ${ratio.padStart(7)} ${pct(r.ofCeiling).padStart(5)}`);
  }
  const steps = all.filter((r) => r.name.startsWith('train step'));
  for (const r of steps) console.log(`${r.name}: lungpath ${r.oursMs ? (1000 / r.oursMs).toFixed(3) : '—'} steps/s, TF.js ${r.tfjsMs ? (1000 / r.tfjsMs).toFixed(3) : '—'} steps/s`);
  console.log(`dispatches ${rt.counters.dispatches}, submits ${rt.counters.submits}, pipelines ${rt.counters.pipelines} (lungpath, whole run)`);
}
rt.destroy();
process.exit(0);
