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
 *   LUNGPATH_KERNELS=heuristic npm run bench   # the built-in per-adapter choice instead of autotune
 *
 * After the kernel rows: the runtime's CPU cost per recorded dispatch and per tiny training step,
 * measured in fresh child processes (bench/dispatch_cost.ts; `--only dispatch`) and the per-op split of one seed training step at
 * batch 1 (bench/step_split.ts; `--only split`).
 */
import './spin_polls.ts';
import { parseArgs } from 'node:util';
import { Bench } from 'tinybench';
import { describeAdapter } from '../src/kernels/device.ts';
import { createNodeRuntime, nodeGpu } from '../src/kernels/node.ts';
import { useKernelsFromEnv } from '../src/train/kernels.ts';
import { SEED_CONFIG, TINY_CONFIG } from '../src/nn/config.ts';
import { benchCases } from './cases.ts';
import { dispatchCostRows, formatSpread, measureDispatchCostInProcesses, type DispatchCostSpread } from './dispatch_cost.ts';
import { formatStepSplit, measureStepSplit, type StepSplit } from './step_split.ts';
import { checkTargets } from './targets.ts';
import { measureTrainStep, type TrainStepStats } from './train_step_stats.ts';
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
// The versions the rows run (their `variant` column): what `lungpath train` runs by default —
// autotuned on this adapter, cached — unless LUNGPATH_KERNELS=heuristic|FILE.json says otherwise.
process.env.LUNGPATH_KERNELS ||= 'autotune';
await useKernelsFromEnv(rt, () => benchCases(rt).filter((c) => selected(c.name)).flatMap((c) => c.kernels ?? []), log);

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

// Dispatches, submits and peak GPU memory of one training step (not timed by tinybench).
const stepStats: TrainStepStats[] = [];
if (selected('train step')) {
  for (const [name, config] of [['tiny patch net', TINY_CONFIG], ['seed patch net', SEED_CONFIG]] as const) {
    stepStats.push(await measureTrainStep(rt, name, config, 16));
  }
}

// The runtime's CPU cost per dispatch (in fresh child processes: this one's heap, after the rows
// above, measured twice a fresh one), and where one seed training step spends its GPU time.
let dispatchCost: DispatchCostSpread | null = null;
if (selected('dispatch') || selected('train step')) dispatchCost = await measureDispatchCostInProcesses(values.quick ? 3 : 5);
let split: StepSplit | null = null;
if (selected('split') || selected('train step')) split = await measureStepSplit(rt, 'seed patch net', SEED_CONFIG, 1, ceilings['GFLOP/s'] ?? null);

const fmt = (v: number | null, digits = 2) => (v === null ? '—' : v.toFixed(digits));
const pct = (v: number | null) => (v === null ? '' : `${(100 * v).toFixed(0)}%`);
const all = [...rows.values()];
const targets = checkTargets(all);
const verdict = (met: boolean | null) => (met === null ? 'not measured' : met ? 'met' : 'NOT met');
if (values.json) {
  for (const r of all) console.log(JSON.stringify({ ...r, adapter, date }));
  for (const s of stepStats) console.log(JSON.stringify({ ...s, name: `train step stats ${s.name}`, adapter, date }));
  for (const t of targets) console.log(JSON.stringify({ name: `target ${t.target}`, ...t, adapter, date }));
  if (dispatchCost) console.log(JSON.stringify({ name: 'dispatch cost', ...dispatchCost, adapter, date }));
  if (split) console.log(JSON.stringify({ ...split, name: 'step split', net: split.name, adapter, date }));
} else if (values.markdown) {
  console.log(`\n| operation | shape | lungpath | TF.js | unit | ours / TF.js | % of ceiling | variant |\n|---|---|---:|---:|---|---:|---:|---|`);
  for (const r of all) console.log(`| ${r.name} | ${r.shape} | ${fmt(r.ours)} | ${fmt(r.tfjs)} | ${r.unit} | ${r.ratio === null ? '—' : `${r.ratio.toFixed(1)}×`} | ${pct(r.ofCeiling)} | ${r.variant} |`);
  if (stepStats.length) {
    console.log(`\n| one training step | batch | dispatches | submits | peak GPU memory | step time |\n|---|---:|---:|---:|---:|---:|`);
    for (const s of stepStats) console.log(`| ${s.name} | ${s.batch} | ${s.dispatches} | ${s.submits} | ${(s.peakBytes / 2 ** 30).toFixed(2)} GiB | ${(s.stepMs / 1000).toFixed(2)} s |`);
  }
  if (targets.length) {
    console.log(`\n| target (lungpath / TF.js) | shape | goal | measured | |\n|---|---|---:|---:|---|`);
    for (const t of targets) console.log(`| ${t.target} | ${t.shape} | ≥ ${t.goal}× | ${t.ratio === null ? '—' : `${t.ratio.toFixed(1)}×`} | ${verdict(t.met)} |`);
  }
  if (dispatchCost) {
    console.log(`\n| runtime CPU cost (${dispatchCost.clock}, main thread), ${dispatchCost.processes} fresh processes | µs, median [min–max] |\n|---|---:|`);
    for (const [label, value] of dispatchCostRows(dispatchCost)) console.log(`| ${label} | ${value} |`);
  }
  if (split) console.log(`\n${formatStepSplit(split, ceilings['GFLOP/s'] ?? null)}`);
} else {
  console.log(`\n${'operation'.padEnd(30)} ${'shape'.padEnd(46)} ${'lungpath'.padStart(9)} ${'TF.js'.padStart(9)} unit     ${'ratio'.padStart(7)} ceil.`);
  for (const r of all) {
    const ratio = r.ratio === null ? '' : `${r.ratio.toFixed(1)}×`;
    console.log(`${r.name.padEnd(30)} ${r.shape.padEnd(46)} ${fmt(r.ours).padStart(9)} ${fmt(r.tfjs).padStart(9)} ${r.unit.padEnd(8)} ${ratio.padStart(7)} ${pct(r.ofCeiling).padStart(5)}`);
  }
  const steps = all.filter((r) => r.name.startsWith('train step'));
  for (const r of steps) console.log(`${r.name}: lungpath ${r.oursMs ? (1000 / r.oursMs).toFixed(3) : '—'} steps/s, TF.js ${r.tfjsMs ? (1000 / r.tfjsMs).toFixed(3) : '—'} steps/s`);
  for (const t of targets) console.log(`target: ${t.target} ${t.shape}: ${t.ratio === null ? '—' : `${t.ratio.toFixed(1)}×`} (goal ≥ ${t.goal}×) ${verdict(t.met)}`);
  for (const s of stepStats) {
    console.log(`one ${s.name} training step, batch ${s.batch}: ${s.dispatches} dispatches, ${s.submits} submits, peak GPU memory ${(s.peakBytes / 2 ** 30).toFixed(2)} GiB (pool high-water mark), ${(s.stepMs / 1000).toFixed(2)} s`);
  }
  if (dispatchCost) {
    const d = dispatchCost;
    console.log(`runtime CPU cost (${d.clock}, µs, median [min–max] of ${d.processes} processes): ${formatSpread(d.usPerDispatchRepeated)} per dispatch (same buffers), ${formatSpread(d.usPerDispatchVaried)} (64 inputs in turn), floor (Dawn's calls alone) ${formatSpread(d.usPerDispatchFloor)}, ${formatSpread(d.usPerTinyStep, 0)} per tiny b16 training step (${d.tinyStepDispatches} dispatches)`);
  }
  if (split) console.log(`\n${formatStepSplit(split, ceilings['GFLOP/s'] ?? null)}`);
  console.log(`dispatches ${rt.counters.dispatches}, submits ${rt.counters.submits}, pipelines ${rt.counters.pipelines} (lungpath, whole run)`);
}
rt.destroy();
process.exit(0);
