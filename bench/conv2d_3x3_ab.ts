/**
 * A/B of 3×3 s1 p1 kernel versions on the seed network's layers at batch 1, forward, data gradient
 * and/or weight gradient (OPS=dw: VARIANTS are then dW versions, e.g. 3x3s1p1,3x3_sg16): each
 * version's median wall time of REPS launches (weight packing included), its GFLOP/s, and the same
 * as a share of the FMA ceiling (bench/cases.ts `ceiling: fma`) read just before and after it; also
 * both per CPU-second of this process (lavapipe's threads included), which moves far less than wall
 * time when other processes share the cores; and the first launch's wall time (shader compilation
 * included). Versions run one after another per shape, so A and B see nearly the same machine state.
 *
 *   npx tsx bench/conv2d_3x3_ab.ts
 *   VARIANTS=3x3,3x3_px16 (default)  OPS=forward,dx (default; or dw)  REPS=2 (default)
 *   SHAPES='256,256,64;128,256,64' (cIn,cOut,size[,batch]; default: the seed's 3×3 layers at 64²–256²)
 */
import './spin_polls.ts';
import { conv2dBackwardData } from '../src/kernels/conv2d_data_grad.ts';
import { conv2dForward, type Conv2dForwardVariant } from '../src/kernels/conv2d_forward.ts';
import { conv2dFlops, type Conv2dShape } from '../src/kernels/conv2d_shape.ts';
import { conv2dBackwardWeight, type Conv2dWeightGradVariant } from '../src/kernels/conv2d_weight_grad.ts';
import { randomArray } from '../src/kernels/check.ts';
import { describeAdapter } from '../src/kernels/device.ts';
import { createNodeRuntime } from '../src/kernels/node.ts';
import { benchCases } from './cases.ts';

const rt = await createNodeRuntime();
const fma = benchCases(rt).find((c) => c.name === 'ceiling: fma');
if (!fma) throw new Error('bench/cases.ts has no FMA ceiling row');

/** The FMA ceiling now: GFLOP/s by the median of 3 launches, and per CPU-second. */
async function ceiling(): Promise<{ wall: number; cpu: number }> {
  const state = fma!.setup();
  fma!.run(state);
  await rt.sync();
  const ms: number[] = [];
  const c0 = process.cpuUsage();
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    fma!.run(state);
    await rt.sync();
    ms.push(performance.now() - t0);
  }
  const c = process.cpuUsage(c0);
  fma!.teardown(state);
  ms.sort((a, b) => a - b);
  return { wall: fma!.work / ((ms[1] as number) * 1e6), cpu: (3 * fma!.work) / ((c.user + c.system) * 1e3) };
}

const shape = (spec: string): Conv2dShape => {
  const [cIn, cOut, size, n] = spec.split(',').map(Number) as [number, number, number, number | undefined];
  return { n: n ?? 1, cIn, h: size, w: size, cOut, kh: 3, kw: 3, stride: 1, pad: 1 };
};
const shapes = (process.env.SHAPES ?? '256,256,64;128,256,64;128,128,64;64,128,64;64,64,128;32,64,128;32,32,256;16,32,256').split(';').map(shape);
const variants = (process.env.VARIANTS ?? '3x3,3x3_px16').split(',') as Conv2dForwardVariant[];
const ops = (process.env.OPS ?? 'forward,dx').split(',');
const reps = Number(process.env.REPS ?? 2);

console.log(`adapter: ${describeAdapter(rt.adapter)}; ${new Date().toISOString()}; median of ${reps}`);
for (const s of shapes) {
  for (const op of ops) {
    for (const variant of variants) {
      const src = rt.upload(randomArray(op === 'dx' ? s.n * s.cOut * s.h * s.w : s.n * s.cIn * s.h * s.w, 1));
      const w = rt.upload(randomArray(s.cOut * s.cIn * 9, 2, -0.1, 0.1));
      const b = rt.upload(randomArray(op === 'dw' ? s.n * s.cOut * s.h * s.w : s.cOut, 3)); // dW: dy
      const launch = () =>
        op === 'forward'
          ? conv2dForward(rt, src, w, b, s, { variant })
          : op === 'dx'
            ? conv2dBackwardData(rt, src, w, s, { variant })
            : conv2dBackwardWeight(rt, src, b, s, { variant: variant as string as Conv2dWeightGradVariant });
      const tc = performance.now();
      rt.release(launch()); // the first launch compiles the pipeline
      await rt.sync();
      const firstMs = performance.now() - tc;
      const before = await ceiling();
      const ms: number[] = [];
      const c0 = process.cpuUsage();
      for (let r = 0; r < reps; r++) {
        const t0 = performance.now();
        rt.release(launch());
        await rt.sync();
        ms.push(performance.now() - t0);
      }
      const c = process.cpuUsage(c0);
      const after = await ceiling();
      ms.sort((p, q) => p - q);
      const median = ms[Math.floor(ms.length / 2)] as number;
      const gflops = conv2dFlops(s) / (median * 1e6);
      const perCpu = (reps * conv2dFlops(s)) / ((c.user + c.system) * 1e3);
      const ceilWall = (before.wall + after.wall) / 2;
      const ceilCpu = (before.cpu + after.cpu) / 2;
      console.log(
        `${`${s.cIn}→${s.cOut} ${s.h}² b${s.n}`.padEnd(18)} ${op.padEnd(7)} ${variant.padEnd(10)} ${median.toFixed(1).padStart(8)} ms ${gflops.toFixed(2).padStart(6)} GFLOP/s = ${((100 * gflops) / ceilWall).toFixed(0).padStart(3)}% of ${ceilWall.toFixed(1)}` +
          ` | per CPU-s ${perCpu.toFixed(2).padStart(5)} = ${((100 * perCpu) / ceilCpu).toFixed(0).padStart(3)}% of ${ceilCpu.toFixed(1)} | first launch ${(firstMs / 1000).toFixed(1)} s`,
      );
      [src, w, b].forEach((buf) => rt.release(buf));
    }
  }
}
rt.destroy();
process.exit(0);
