/**
 * One patch-network training step (the bench's: random batch, forward, loss, backward, Adam) per
 * CPU-second of this process, against the WGSL FMA ceiling (bench/cases.ts `ceiling: fma`) measured
 * the same way just before and after: on a CPU adapter (lavapipe runs in this process) the ratio is
 * the step's share of the FMA ceiling, and it moves far less than wall-clock rates when other
 * processes share the cores. Also printed: wall time and wall GFLOP/s. Dawn's polls are not made to
 * spin here (bench/spin_polls.ts is not imported), so waiting costs no CPU; the step's FLOPs are
 * step_split.ts's (3 × forward FLOPs).
 *
 *   npx tsx bench/step_cpu.ts [seed|tiny] [batch] [--steps 2] [--kernels heuristic|autotune|FILE.json]
 */
import { parseArgs } from 'node:util';
import { describeAdapter } from '../src/kernels/device.ts';
import { createNodeRuntime } from '../src/kernels/node.ts';
import { SEED_CONFIG, TINY_CONFIG } from '../src/nn/config.ts';
import { kernelUses } from '../src/nn/kernel_uses.ts';
import { buildPatchNetwork } from '../src/nn/networks.ts';
import { Adam } from '../src/nn/optim.ts';
import { Tensor } from '../src/nn/tensor.ts';
import { useKernelsFromEnv } from '../src/train/kernels.ts';
import { benchCases } from './cases.ts';
import { stepFlops, trainingStep } from './train_step.ts';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { steps: { type: 'string', default: '2' }, kernels: { type: 'string' } } });
if (values.kernels) process.env.LUNGPATH_KERNELS = values.kernels;
const which = positionals[0] ?? 'seed';
const batch = Number(positionals[1] ?? 1);
const steps = Number(values.steps);
const config = which === 'tiny' ? TINY_CONFIG : SEED_CONFIG;
const size = config.patch.size;

const rt = await createNodeRuntime();
await useKernelsFromEnv(rt, () => {
  const probe = buildPatchNetwork(rt, config, 7).train();
  const uses = kernelUses(probe, [batch, 3, size, size], true);
  probe.destroy();
  return uses;
});
const cpuSeconds = (c: NodeJS.CpuUsage) => (c.user + c.system) / 1e6;

/** The FMA ceiling: GFLOP per CPU-second over 3 launches (after one), and the median wall GFLOP/s. */
async function ceiling(): Promise<{ cpu: number; wall: number }> {
  const fma = benchCases(rt).find((c) => c.name === 'ceiling: fma');
  if (!fma) throw new Error('bench/cases.ts has no FMA ceiling row');
  const state = fma.setup();
  fma.run(state);
  await rt.sync();
  const ms: number[] = [];
  const c0 = process.cpuUsage();
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    fma.run(state);
    await rt.sync();
    ms.push(performance.now() - t0);
  }
  const cpu = cpuSeconds(process.cpuUsage(c0));
  fma.teardown(state);
  ms.sort((a, b) => a - b);
  return { cpu: (3 * fma.work) / (cpu * 1e9), wall: fma.work / ((ms[1] as number) * 1e6) };
}

const net = buildPatchNetwork(rt, config, 7).train();
const adam = new Adam(net.parameters(), { lr: 1e-3 });
const x = Tensor.fromArray(rt, Float32Array.from({ length: batch * 3 * size * size }, (_, i) => ((i * 2654435761) >>> 0) / 4294967296), [batch, 3, size, size]);
const labels = rt.upload(Uint32Array.from({ length: batch }, (_, i) => i % config.classes.length));
const flops = stepFlops(kernelUses(net, [batch, 3, size, size], true));
const step = trainingStep(net, adam, x, labels);
step(0); // compiles every pipeline
await rt.sync();

console.log(`adapter: ${describeAdapter(rt.adapter)}; ${new Date().toISOString()}; ${which} patch net, batch ${batch}, ${(flops / 1e9).toFixed(2)} GFLOP per step; kernels: ${process.env.LUNGPATH_KERNELS ?? 'heuristic'}`);
const before = await ceiling();
const c0 = process.cpuUsage();
const t0 = performance.now();
for (let i = 1; i <= steps; i++) {
  step(i);
  await rt.sync();
}
const wallS = (performance.now() - t0) / 1000 / steps;
const cpuS = cpuSeconds(process.cpuUsage(c0)) / steps;
const after = await ceiling();
const ceilCpu = (before.cpu + after.cpu) / 2;
const ceilWall = (before.wall + after.wall) / 2;
const perCpu = flops / (cpuS * 1e9);
const wall = flops / (wallS * 1e9);
console.log(
  `step: ${wallS.toFixed(1)} s wall, ${cpuS.toFixed(1)} CPU-s (mean of ${steps}) | ${wall.toFixed(2)} GFLOP/s = ${((100 * wall) / ceilWall).toFixed(0)}% of ${ceilWall.toFixed(1)} wall` +
    ` | per CPU-s ${perCpu.toFixed(2)} = ${((100 * perCpu) / ceilCpu).toFixed(0)}% of the ceiling's ${ceilCpu.toFixed(1)} (${before.cpu.toFixed(1)} before, ${after.cpu.toFixed(1)} after)`,
);
x.release();
rt.release(labels);
adam.destroy();
net.destroy();
rt.destroy();
process.exit(0);
