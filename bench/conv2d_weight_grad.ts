/**
 * conv2d dW / db benchmark (after llm.c's dev/cuda mains): every dW variant is first checked
 * against conv2dBackwardWeightRef on a reduced copy of each shape (batch 1, at most 24×24 pixels,
 * the same kernel, stride, padding and channels), then timed at the seed network's shapes:
 * median of several launches, each followed by rt.sync(). FLOPs from conv2dFlops. Also printed:
 * the process CPU time of the median launch (lavapipe runs in-process), which says how busy the
 * shared machine was — wall ≈ CPU / cores on a quiet one. `*` marks the heuristic's version; each
 * shape at batch ≤ 8 ends with what autotune (src/kernels/autotune.ts) measures and picks there.
 *
 *   npx tsx bench/conv2d_weight_grad.ts [--iterations 5] [--only 3x3s1p1]
 */
import './spin_polls.ts';
import { parseArgs } from 'node:util';
import { autotune, formatTimings } from '../src/kernels/autotune.ts';
import { describeAdapter } from '../src/kernels/device.ts';
import { createNodeRuntime } from '../src/kernels/node.ts';
import { conv2dBackwardBiasRef, conv2dBackwardWeightRef } from '../src/kernels/conv2d_ref.ts';
import { conv2dFlops, conv2dOutputSize, type Conv2dShape } from '../src/kernels/conv2d_shape.ts';
import {
  chooseConv2dWeightGradVariant,
  CONV2D_WEIGHT_GRAD_VARIANTS,
  conv2dBackwardBias,
  conv2dBackwardWeight,
  conv2dWeightGradSupports,
  type Conv2dWeightGradVariant,
} from '../src/kernels/conv2d_weight_grad.ts';
import { closeMismatches, randomArray } from '../src/kernels/check.ts';

const { values } = parseArgs({ options: { iterations: { type: 'string', default: '5' }, only: { type: 'string' } } });
const iterations = Number(values.iterations);

const seedShapes: [string, Conv2dShape][] = [
  ['block 3 conv 3×3 64→64 @128²', { n: 8, cIn: 64, h: 128, w: 128, cOut: 64, kh: 3, kw: 3, stride: 1, pad: 1 }],
  ['block 1 conv 3×3 16→16 @256²', { n: 8, cIn: 16, h: 256, w: 256, cOut: 16, kh: 3, kw: 3, stride: 1, pad: 1 }],
  ['block 3 down 2×2 s2 64→64 @128²', { n: 8, cIn: 64, h: 128, w: 128, cOut: 64, kh: 2, kw: 2, stride: 2, pad: 0 }],
  ['final conv 1×1 256→1 @64²', { n: 8, cIn: 256, h: 64, w: 64, cOut: 1, kh: 1, kw: 1, stride: 1, pad: 0 }],
  ['block 1 conv 3×3 16→16 @512² b16', { n: 16, cIn: 16, h: 512, w: 512, cOut: 16, kh: 3, kw: 3, stride: 1, pad: 1 }],
];

const rt = await createNodeRuntime();
console.log(`conv2d dW/db benchmark — adapter: ${describeAdapter(rt.adapter)} — median of ${iterations}`);

/** Median wall-clock ms of `iterations` launches (after one warm-up), and that launch's CPU ms. */
async function median(run: () => GPUBuffer): Promise<{ ms: number; cpuMs: number }> {
  rt.release(run());
  await rt.sync();
  const samples: { ms: number; cpuMs: number }[] = [];
  for (let i = 0; i < iterations; i++) {
    const cpu = process.cpuUsage();
    const start = performance.now();
    const out = run();
    await rt.sync();
    const ms = performance.now() - start;
    const used = process.cpuUsage(cpu);
    samples.push({ ms, cpuMs: (used.user + used.system) / 1000 });
    rt.release(out);
  }
  return samples.sort((a, b) => a.ms - b.ms)[Math.floor(samples.length / 2)] as { ms: number; cpuMs: number };
}

async function check(variant: Conv2dWeightGradVariant | 'db', s: Conv2dShape): Promise<string> {
  const small = { ...s, n: 1, h: Math.min(s.h, 23), w: Math.min(s.w, 24) };
  const { ho, wo } = conv2dOutputSize(small);
  const xs = randomArray(small.n * small.cIn * small.h * small.w, 1);
  const dys = randomArray(small.n * small.cOut * ho * wo, 2);
  const x = rt.upload(xs);
  const dy = rt.upload(dys);
  const isDb = variant === 'db';
  const out = isDb ? conv2dBackwardBias(rt, dy, small) : conv2dBackwardWeight(rt, x, dy, small, { variant });
  const got = await rt.readF32(out, isDb ? small.cOut : small.cOut * small.cIn * small.kh * small.kw);
  [x, dy, out].forEach((b) => rt.release(b));
  const ref = isDb ? conv2dBackwardBiasRef(dys, small) : conv2dBackwardWeightRef(xs, dys, small);
  const { count, maxAbsError } = closeMismatches(got, ref, { atol: 1e-4 * Math.sqrt(ho * wo), rtol: 1e-4 });
  if (count > 0) throw new Error(`${variant} differs from the reference on ${JSON.stringify(small)}`);
  return `ok (max |err| ${maxAbsError.toExponential(1)})`;
}

const row = (name: string, variant: string, t: { ms: number; cpuMs: number }, rate: string, checked: string) =>
  console.log(`${name.padEnd(34)} ${variant.padEnd(9)} ${t.ms.toFixed(1).padStart(9)} ms ${rate.padStart(14)}  cpu ${t.cpuMs.toFixed(0).padStart(6)} ms  ${checked}`);

for (const [name, s] of seedShapes) {
  const { ho, wo } = conv2dOutputSize(s);
  const x = rt.alloc(s.n * s.cIn * s.h * s.w * 4, 'bench x');
  const dy = rt.alloc(s.n * s.cOut * ho * wo * 4, 'bench dy');
  rt.write(x, randomArray(s.n * s.cIn * s.h * s.w, 3));
  rt.write(dy, randomArray(s.n * s.cOut * ho * wo, 4));
  const chosen = chooseConv2dWeightGradVariant(rt, s);
  for (const variant of CONV2D_WEIGHT_GRAD_VARIANTS) {
    if (!conv2dWeightGradSupports(variant, s) || (values.only && variant !== values.only)) continue;
    if (s.n > 8 && variant !== chosen) continue;
    const checked = await check(variant, s);
    const t = await median(() => conv2dBackwardWeight(rt, x, dy, s, { variant }));
    row(name, variant + (variant === chosen ? '*' : ''), t, `${(conv2dFlops(s) / (t.ms * 1e6)).toFixed(2)} GFLOP/s`, checked);
  }
  if (s.n <= 8 && !values.only) {
    const [tuned] = await autotune(rt, [{ op: 'conv2d.dw', shape: s }], { reps: iterations });
    console.log(`${name.padEnd(34)} autotune picks ${tuned?.variant} (${formatTimings(tuned?.timings ?? {})})`);
  }
  const checked = await check('db', s);
  const t = await median(() => conv2dBackwardBias(rt, dy, s));
  row(name, 'db', t, `${((s.n * s.cOut * ho * wo * 4) / (t.ms * 1e6)).toFixed(2)} GB/s`, checked);
  rt.release(x);
  rt.release(dy);
}
console.log('* = chooseConv2dWeightGradVariant (the heuristic)');
rt.destroy();
