/**
 * conv2d forward and data-gradient kernels: every variant that applies to each seed-network shape is
 * checked once against the CPU reference (conv2d_ref.ts, at batch 1 to keep the float64 loops short)
 * and timed at batch 8 (median and best of several runs, rt.sync() around each; includes weight
 * packing). Prints GFLOP/s (conv2dFlops) from the median and best wall times, and per second of
 * process CPU time (on 2 cores a quiet machine's wall-clock rate is up to twice that): other
 * processes on the machine make wall times noisy. After llm.c's dev/cuda benches: versions side by side, one checker.
 * `(heuristic)` marks the version a launch runs with an empty kernel table; each shape ends with
 * what autotune (src/kernels/autotune.ts) measures and picks there.
 *
 *   npx tsx bench/conv2d_forward.ts [filter]    e.g. `3x3` to run only shapes whose name contains it
 *   LUNGPATH_BENCH_REPS=5 (default)
 *   LUNGPATH_BENCH_OPS=forward,dx (default; `forward` skips the data gradient)
 *   LUNGPATH_BENCH_VARIANTS=2x2s2,2x2s2_sg (default: every version that applies)
 */
import './spin_polls.ts';
import { closeMismatches, randomArray } from '../src/kernels/check.ts';
import {
  CONV2D_BACKWARD_DATA_VARIANTS,
  CONV2D_FORWARD_VARIANTS,
  chooseConv2dBackwardDataVariant,
  chooseConv2dForwardVariant,
  conv2dBackwardData,
  conv2dBackwardDataRef,
  conv2dFlops,
  conv2dForward,
  conv2dForwardRef,
  conv2dOutputSize,
  conv2dVariantApplies,
  type Conv2dShape,
} from '../src/kernels/conv2d.ts';
import { autotune, formatTimings } from '../src/kernels/autotune.ts';
import { describeAdapter } from '../src/kernels/device.ts';
import { createNodeRuntime } from '../src/kernels/node.ts';
import type { Runtime } from '../src/kernels/runtime.ts';

const SHAPES: [string, Conv2dShape][] = [
  ['3x3 64→64 128² b8', { n: 8, cIn: 64, h: 128, w: 128, cOut: 64, kh: 3, kw: 3, stride: 1, pad: 1 }],
  ['3x3 16→16 256² b8', { n: 8, cIn: 16, h: 256, w: 256, cOut: 16, kh: 3, kw: 3, stride: 1, pad: 1 }],
  ['2x2s2 64→64 128² b8', { n: 8, cIn: 64, h: 128, w: 128, cOut: 64, kh: 2, kw: 2, stride: 2, pad: 0 }],
  // The seed network's other 2×2 s2 convs (Level 1), and the tiny preset's at batch 16 (Level 1, then Level 2).
  ['2x2s2 16→16 512² b8', { n: 8, cIn: 16, h: 512, w: 512, cOut: 16, kh: 2, kw: 2, stride: 2, pad: 0 }],
  ['2x2s2 32→32 256² b8', { n: 8, cIn: 32, h: 256, w: 256, cOut: 32, kh: 2, kw: 2, stride: 2, pad: 0 }],
  ['2x2s2 8→8 64² b16 tiny', { n: 16, cIn: 8, h: 64, w: 64, cOut: 8, kh: 2, kw: 2, stride: 2, pad: 0 }],
  ['2x2s2 8→8 32² b16 tiny', { n: 16, cIn: 8, h: 32, w: 32, cOut: 8, kh: 2, kw: 2, stride: 2, pad: 0 }],
  ['2x2s2 16→16 16² b16 tiny', { n: 16, cIn: 16, h: 16, w: 16, cOut: 16, kh: 2, kw: 2, stride: 2, pad: 0 }],
  ['2x2s2 16→16 8² b16 tiny', { n: 16, cIn: 16, h: 8, w: 8, cOut: 16, kh: 2, kw: 2, stride: 2, pad: 0 }],
  ['1x1 256→1 64² b8', { n: 8, cIn: 256, h: 64, w: 64, cOut: 1, kh: 1, kw: 1, stride: 1, pad: 0 }],
];
const REPS = Number(process.env.LUNGPATH_BENCH_REPS ?? 5);
const OPS = (process.env.LUNGPATH_BENCH_OPS ?? 'forward,dx').split(',') as Op[];
const ONLY = process.env.LUNGPATH_BENCH_VARIANTS?.split(',');

type Op = 'forward' | 'dx';

function run(rt: Runtime, op: Op, variant: string, s: Conv2dShape, a: GPUBuffer, w: GPUBuffer, b: GPUBuffer): GPUBuffer {
  return op === 'forward'
    ? conv2dForward(rt, a, w, b, s, { variant: variant as (typeof CONV2D_FORWARD_VARIANTS)[number] })
    : conv2dBackwardData(rt, a, w, s, { variant: variant as (typeof CONV2D_BACKWARD_DATA_VARIANTS)[number] });
}

/** Inputs of one op: x (forward) or dy (dx), with weights and bias. */
function inputs(rt: Runtime, op: Op, s: Conv2dShape) {
  const { ho, wo } = conv2dOutputSize(s);
  const a = randomArray(op === 'forward' ? s.n * s.cIn * s.h * s.w : s.n * s.cOut * ho * wo, 1);
  const w = randomArray(s.cOut * s.cIn * s.kh * s.kw, 2, -0.1, 0.1);
  const b = randomArray(s.cOut, 3);
  return { host: { a, w, b }, gpu: { a: rt.upload(a), w: rt.upload(w), b: rt.upload(b) } };
}

async function check(rt: Runtime, op: Op, variant: string, shape: Conv2dShape): Promise<string> {
  const s = { ...shape, n: 1 };
  const { host, gpu } = inputs(rt, op, s);
  const expected = op === 'forward' ? conv2dForwardRef(host.a, host.w, host.b, s) : conv2dBackwardDataRef(host.a, host.w, s);
  const out = run(rt, op, variant, s, gpu.a, gpu.w, gpu.b);
  const { count, maxAbsError } = closeMismatches(await rt.readF32(out, expected.length), expected, { atol: 1e-4, rtol: 1e-4 });
  [out, gpu.a, gpu.w, gpu.b].forEach((buf) => rt.release(buf));
  return count === 0 ? `ok (max |err| ${maxAbsError.toExponential(1)})` : `MISMATCH: ${count} elements`;
}

/**
 * Median and best wall time of one launch (ms), each run between two rt.sync(), and the process CPU
 * time per launch (lavapipe's threads included): less sensitive than wall time to other processes.
 */
async function time(rt: Runtime, op: Op, variant: string, s: Conv2dShape): Promise<{ median: number; best: number; cpu: number }> {
  const { gpu } = inputs(rt, op, s);
  rt.release(run(rt, op, variant, s, gpu.a, gpu.w, gpu.b));
  await rt.sync();
  const ms: number[] = [];
  const cpu0 = process.cpuUsage();
  for (let r = 0; r < REPS; r++) {
    const t0 = performance.now();
    rt.release(run(rt, op, variant, s, gpu.a, gpu.w, gpu.b));
    await rt.sync();
    ms.push(performance.now() - t0);
  }
  const cpu = process.cpuUsage(cpu0);
  [gpu.a, gpu.w, gpu.b].forEach((buf) => rt.release(buf));
  ms.sort((p, q) => p - q);
  return { median: ms[Math.floor(ms.length / 2)] as number, best: ms[0] as number, cpu: (cpu.user + cpu.system) / 1000 / REPS };
}

async function main(): Promise<void> {
  const filter = process.argv[2] ?? '';
  const rt = await createNodeRuntime();
  console.log(`adapter: ${describeAdapter(rt.adapter)}; ${REPS} timed runs each, median`);
  for (const [name, s] of SHAPES.filter(([name]) => name.includes(filter))) {
    for (const op of OPS) {
      const chosen = op === 'forward' ? chooseConv2dForwardVariant(rt, s) : chooseConv2dBackwardDataVariant(rt, s);
      for (const variant of CONV2D_FORWARD_VARIANTS.filter((v) => conv2dVariantApplies(v, s) && (!ONLY || ONLY.includes(v)))) {
        const verdict = await check(rt, op, variant, s);
        const { median, best, cpu } = await time(rt, op, variant, s);
        const gflops = (ms: number) => (conv2dFlops(s) / (ms * 1e6)).toFixed(2).padStart(6);
        const mark = variant === chosen ? ' (heuristic)' : '';
        console.log(
          `${name.padEnd(20)} ${op.padEnd(7)} ${(variant + mark).padEnd(20)} ${median.toFixed(1).padStart(7)} ms ${gflops(median)} GFLOP/s` +
            ` | best ${gflops(best)} | ${gflops(cpu)} per CPU-s | ${verdict}`,
        );
      }
      const [tuned] = await autotune(rt, [{ op: op === 'forward' ? 'conv2d.forward' : 'conv2d.dx', shape: s }], { reps: REPS });
      console.log(`${name.padEnd(20)} ${op.padEnd(7)} autotune picks ${tuned?.variant} (${formatTimings(tuned?.timings ?? {})})`);
    }
  }
  rt.destroy();
}

await main();
