/**
 * Bench: BatchNorm2d (training forward + backward), ReLU and dropout at 8×64×128×128 fp32 — the
 * size of a block-3 activation of the patch network at batch 8 — and BatchNorm2d on the seed
 * network's 9×16×512×512 (144 MiB: over lavapipe's 128 MiB binding, so it runs in two chunks).
 * Prints the median and best time of each op and its effective bandwidth,
 * GB/s = (bytes read + written) / median time.
 * Run: npx tsx bench/norm_activation.ts [iterations]
 */
import './spin_polls.ts';
import { batchNorm2dBackward, batchNorm2dForwardTrain, type BatchNormShape } from '../src/kernels/batchnorm2d.ts';
import { describeAdapter } from '../src/kernels/device.ts';
import { dropoutForward } from '../src/kernels/dropout.ts';
import { createNodeRuntime } from '../src/kernels/node.ts';
import { reluBackward, reluForward } from '../src/kernels/relu.ts';
import type { Runtime } from '../src/kernels/runtime.ts';

const iterations = Number(process.argv[2] ?? 10);

function randomF32(count: number, seed: number): Float32Array {
  const out = new Float32Array(count);
  let state = seed >>> 0;
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = state / 2 ** 32 - 0.5;
  }
  return out;
}

/** Median and best ms of `iterations` runs of `step` (each ends with a sync), after two warm-up runs. */
async function time(rt: Runtime, step: () => GPUBuffer[]): Promise<{ median: number; best: number }> {
  const samples: number[] = [];
  for (let i = 0; i < iterations + 2; i++) {
    const start = performance.now();
    const outputs = step();
    await rt.sync();
    if (i >= 2) samples.push(performance.now() - start);
    outputs.forEach((b) => rt.release(b));
  }
  samples.sort((a, b) => a - b);
  return { median: samples[Math.floor(samples.length / 2)] as number, best: samples[0] as number };
}

/** Times each case on tensors of shape `s`; `tensors` = how many tensor-sized arrays it reads + writes. */
async function benchShape(rt: Runtime, s: BatchNormShape, withActivations: boolean): Promise<void> {
  const n = s.n * s.c * s.h * s.w;
  const tensorBytes = n * 4;
  console.log(`\ntensor ${s.n}×${s.c}×${s.h}×${s.w} fp32 = ${(tensorBytes / 2 ** 20).toFixed(0)} MiB`);
  const x = rt.upload(randomF32(n, 1));
  const dy = rt.upload(randomF32(n, 2));
  const gamma = rt.upload(new Float32Array(s.c).fill(1));
  const beta = rt.upload(new Float32Array(s.c));
  const runningMean = rt.upload(new Float32Array(s.c));
  const runningVar = rt.upload(new Float32Array(s.c).fill(1));
  const forward = () => Object.values(batchNorm2dForwardTrain(rt, x, gamma, beta, runningMean, runningVar, s));
  const saved = forward();
  const y = reluForward(rt, x, n);
  const cases: [string, number, () => GPUBuffer[]][] = [
    ['batchnorm2d train forward (stats + normalize)', 3, forward],
    ['batchnorm2d train backward (sums + dx)', 5, () => Object.values(batchNorm2dBackward(rt, dy, x, gamma, saved[1]!, saved[2]!, s, true))],
    ['batchnorm2d train forward + backward', 8, () => {
      const out = forward();
      return [...out, ...Object.values(batchNorm2dBackward(rt, dy, x, gamma, out[1]!, out[2]!, s, true))];
    }],
  ];
  if (withActivations) {
    cases.push(['relu forward', 2, () => [reluForward(rt, x, n)]]);
    cases.push(['relu backward', 3, () => [reluBackward(rt, dy, y, n)]]);
    cases.push(['dropout forward (p = 0.5)', 2, () => [dropoutForward(rt, x, n, 0.5, 1234)]]);
  }
  for (const [name, tensors, step] of cases) {
    const { median, best } = await time(rt, step);
    const gbps = (tensors * tensorBytes) / (median * 1e6);
    console.log(`${name.padEnd(46)} median ${median.toFixed(1).padStart(7)} ms (best ${best.toFixed(1).padStart(7)})  ${gbps.toFixed(2).padStart(5)} GB/s  [${tensors} tensors]`);
  }
  [x, dy, gamma, beta, runningMean, runningVar, y, ...saved].forEach((b) => rt.release(b));
  rt.pool.trim();
}

const rt = await createNodeRuntime();
console.log(`adapter: ${describeAdapter(rt.adapter)}; binding limit ${(rt.maxBindingBytes / 2 ** 20).toFixed(0)} MiB; ${iterations} timed runs each`);
await benchShape(rt, { n: 8, c: 64, h: 128, w: 128 }, true);
await benchShape(rt, { n: 9, c: 16, h: 512, w: 512 }, false);
rt.destroy();
