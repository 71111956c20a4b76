/**
 * Benchmark of the dense kernels on the current WebGPU adapter: linear forward + backward at the
 * Level-1 head (n=16, 4096 → 4) and the Level-2 classifier's first layer (256 → 128), Adam over the
 * Level-1 parameter count (1,219,237), log-softmax + NLL + fused backward at n=16, c=4, and a
 * batch of 16 crops of 512² patches from a 2560² image.
 * Each case is timed two ways: one launch followed by `rt.sync()` (latency, includes a submit and
 * the wait), and `BATCH` launches recorded into one submit (throughput): median and best of
 * REPEATS runs (the best is the steadier figure on a shared, loaded machine).
 *
 *   npx tsx bench/dense.ts
 */
import './spin_polls.ts';
import { adamStep } from '../src/kernels/adam.ts';
import { cropPatches } from '../src/kernels/crop_patches.ts';
import { describeAdapter } from '../src/kernels/device.ts';
import {
  linearBackwardBias,
  linearBackwardData,
  linearBackwardWeight,
  linearForward,
  type LinearGemmVariant,
  type LinearShape,
} from '../src/kernels/linear.ts';
import { logSoftmaxForward, logSoftmaxNllBackward, nllLossForward } from '../src/kernels/log_softmax_nll.ts';
import { createNodeRuntime } from '../src/kernels/node.ts';
import type { Runtime } from '../src/kernels/runtime.ts';

/** A benchmark case: `run` records one launch and returns the buffers it created (released after). */
export interface DenseCase {
  name: string;
  shape: string;
  /** FLOPs or bytes of one launch, in the unit below. */
  work: number;
  unit: 'GFLOP/s' | 'GB/s';
  setup(): GPUBuffer[];
  run(inputs: GPUBuffer[]): GPUBuffer[];
}

const BATCH = 20;
const REPEATS = 7;

function filled(rt: Runtime, n: number, seed: number): GPUBuffer {
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = Math.sin(seed * 7.1 + i * 0.37) * 0.5;
  return rt.upload(data);
}

/** Forward, dx, dW and db of one layer; `variant` forces one GEMM version (default: the library's choice). */
function linearCase(rt: Runtime, s: LinearShape, variant?: LinearGemmVariant): DenseCase {
  return {
    name: `linear fwd+bwd ${variant ?? 'auto'}`,
    shape: `n=${s.n}, ${s.inFeatures}→${s.outFeatures}`,
    work: 3 * 2 * s.n * s.inFeatures * s.outFeatures,
    unit: 'GFLOP/s',
    setup: () => [filled(rt, s.n * s.inFeatures, 1), filled(rt, s.outFeatures * s.inFeatures, 2), filled(rt, s.outFeatures, 3), filled(rt, s.n * s.outFeatures, 4)],
    run: ([x, w, b, dy]) => [
      linearForward(rt, x!, w!, b!, s, variant),
      linearBackwardData(rt, dy!, w!, s, variant),
      linearBackwardWeight(rt, x!, dy!, s, variant),
      linearBackwardBias(rt, dy!, s),
    ],
  };
}

/** The dense cases at the networks' shapes. */
export function denseCases(rt: Runtime): DenseCase[] {
  const params = 1_219_237;
  let step = 0;
  const head = { n: 16, classes: 4 };
  const img = { width: 2560, height: 2560 };
  return [
    ...(['tiled', 'cols', undefined] as const).flatMap((variant) => [
      linearCase(rt, { n: 16, inFeatures: 4096, outFeatures: 4 }, variant),
      linearCase(rt, { n: 16, inFeatures: 256, outFeatures: 128 }, variant),
    ]),
    {
      name: 'adam step',
      shape: `${params} params`,
      work: params * 28,
      unit: 'GB/s',
      setup: () => [filled(rt, params, 5), filled(rt, params, 6), filled(rt, params, 7), filled(rt, params, 8)],
      run: ([p, g, m, v]) => {
        adamStep(rt, p!, g!, m!, v!, params, { lr: 1e-3, step: ++step });
        return [];
      },
    },
    {
      name: 'log-softmax+nll+bwd',
      shape: `n=${head.n}, c=${head.classes}`,
      work: head.n * head.classes * 4 * 4,
      unit: 'GB/s',
      setup: () => [filled(rt, head.n * head.classes, 9), rt.upload(Uint32Array.from({ length: head.n }, (_, i) => i % head.classes))],
      run: ([z, t]) => {
        const logp = logSoftmaxForward(rt, z!, head);
        return [logp, nllLossForward(rt, logp, t!, head), logSoftmaxNllBackward(rt, logp, t!, head)];
      },
    },
    {
      name: 'crop 512² patches',
      shape: '16 of 2560², stride 256',
      work: 16 * 3 * 512 * 512 * 4,
      unit: 'GB/s',
      setup: () => [rt.upload(new Uint8Array(img.width * img.height * 3).map((_, i) => i * 31))],
      run: ([image]) => [cropPatches(rt, image!, img, { size: 512, stride: 256 }, { variant: 5, first: 20, count: 16 })],
    },
  ];
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

/** Median and best time per launch, in ms, over REPEATS samples of `launches` launches and one sync. */
async function time(rt: Runtime, c: DenseCase, inputs: GPUBuffer[], launches: number): Promise<{ median: number; best: number }> {
  const samples: number[] = [];
  for (let r = 0; r < REPEATS; r++) {
    const start = performance.now();
    const outputs: GPUBuffer[] = [];
    for (let i = 0; i < launches; i++) outputs.push(...c.run(inputs));
    await rt.sync();
    samples.push((performance.now() - start) / launches);
    outputs.forEach((buf) => rt.release(buf));
  }
  return { median: median(samples), best: Math.min(...samples) };
}

async function main(): Promise<void> {
  const rt = await createNodeRuntime();
  console.log(`lungpath dense-kernel benchmark — ${describeAdapter(rt.adapter)}`);
  console.log(`${'case'.padEnd(26)} ${'shape'.padEnd(26)} ${'1 launch+sync'.padStart(13)} ${`${BATCH}/submit median`.padStart(18)} ${'best'.padStart(9)}  rate (median, best)`);
  for (const c of denseCases(rt)) {
    const inputs = c.setup();
    c.run(inputs).forEach((buf) => rt.release(buf));
    await rt.sync();
    const single = await time(rt, c, inputs, 1);
    const batched = await time(rt, c, inputs, BATCH);
    const rate = (ms: number) => (c.work / (ms * 1e6)).toFixed(3);
    console.log(
      `${c.name.padEnd(26)} ${c.shape.padEnd(26)} ${single.median.toFixed(3).padStart(10)} ms ${batched.median.toFixed(3).padStart(15)} ms ` +
        `${batched.best.toFixed(3).padStart(6)} ms  ${rate(batched.median)}, ${rate(batched.best)} ${c.unit}`,
    );
    inputs.forEach((buf) => rt.release(buf));
  }
  rt.destroy();
}

await main();
