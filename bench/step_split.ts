/**
 * Where one training step of a patch network spends its GPU time: every dispatch of one step timed
 * by timestamp queries (Runtime.startProfile), grouped by op — conv forward / data gradient / weight
 * gradient per kernel family (the first layer, 3 input channels, on its own), BatchNorm (its
 * element passes with the fused ReLU as "batchnorm forward/backward (+relu)"), ReLU, Adam and the rest — with each group's share of the step and, for the convolutions, its GFLOP/s and % of
 * the adapter's FMA ceiling. The step is the bench's (random batch, Adam), measured after one warm-up
 * step. Profiling puts each dispatch in its own pass, so the sum is a little above the plain step.
 *
 *   npx tsx bench/step_split.ts [seed|tiny|tile|CONFIG.json] [batch] [--kernels heuristic|autotune|FILE.json]
 *   (also part of `npm run bench`: seed, batch 1). Without --kernels (or LUNGPATH_KERNELS) the
 *   launches run the built-in heuristic; `autotune` times every version per shape first, as
 *   `lungpath train` does (cached on disk). The kernel version of every conv is printed.
 */
import './spin_polls.ts';
import { currentVersion } from '../src/kernels/autotune.ts';
import type { DispatchTiming } from '../src/kernels/profiler.ts';
import { conv2dFlops, type Conv2dShape } from '../src/kernels/conv2d_shape.ts';
import type { Runtime } from '../src/kernels/runtime.ts';
import type { ModelConfig } from '../src/nn/config.ts';
import { kernelUses } from '../src/nn/kernel_uses.ts';
import { fusion } from '../src/nn/modules.ts';
import { buildPatchNetwork } from '../src/nn/networks.ts';
import { Adam } from '../src/nn/optim.ts';
import { Tensor } from '../src/nn/tensor.ts';
import { stepFlops, trainingStep } from './train_step.ts';

export interface SplitRow {
  group: string;
  ms: number;
  share: number;
  dispatches: number;
  /** FLOPs of the group (convolutions only), else null. */
  flops: number | null;
  gflops: number | null;
  ofCeiling: number | null;
}

export interface StepSplit {
  name: string;
  batch: number;
  rows: SplitRow[];
  totalMs: number;
  /** 3 × forward conv + linear FLOPs, as the train-step rows count them. */
  stepFlops: number;
  /** Each distinct conv launch of the step and the kernel version it ran, e.g. `conv2d.forward 128→256 64² k3: 3x3`. */
  convVersions: string[];
}

type Phase = 'forward' | 'backward' | 'optimizer';

/** The kernel family of a conv dispatch: '3x3', '2x2s2', '1x1', 'gemm', or null for a non-conv kernel. */
function convFamily(kernel: string): string | null {
  // conv2d_3x3_px*: forward and data gradient alike (told apart by phase, as conv2d_fwd_3x3).
  const m = /^conv2d_(?:fwd|dx)_(3x3|2x2s2|1x1|gemm)/.exec(kernel) ?? /^conv2d_(3x3)_px/.exec(kernel) ?? /^conv2d_dw_(3x3|2x2s2|1x1|general)/.exec(kernel);
  if (!m) return null;
  return m[1] === 'general' ? 'gemm' : (m[1] as string);
}

function variantFamily(variant: string): string {
  if (variant.startsWith('3x3')) return '3x3';
  if (variant.startsWith('2x2s2')) return '2x2s2';
  if (variant.startsWith('1x1')) return '1x1';
  return 'gemm';
}

/** The group a dispatch belongs to; `firstInputBytes` tells the first conv layer's dispatches apart. */
function groupOf(t: DispatchTiming, phase: Phase, firstInputBytes: number): string {
  const k = t.kernel;
  if (phase === 'optimizer') return k.startsWith('adam') ? 'adam' : 'optimizer, other';
  if (k === 'conv2d_fwd_dx_pack') return `weight packing (${phase})`;
  if (k === 'conv2d_dw_reduce') return 'conv dW partial-sum reduce';
  if (k === 'conv2d_db') return 'conv db';
  const family = convFamily(k);
  if (family) {
    const first = t.bindingBytes[0] === firstInputBytes ? ', layer 1' : '';
    if (k.startsWith('conv2d_dw_')) return `conv ${family} dW${first}`;
    // The 3×3 data gradient runs the forward kernel on flipped weights: the phase tells them apart.
    return `conv ${family} ${phase === 'forward' ? 'forward' : 'dx'}${phase === 'forward' ? first : ''}`;
  }
  // Fused (fusion.bnRelu; every BatchNorm of a patch net is followed by a ReLU) all of a BatchNorm's
  // dispatches belong to the fused op: its `_relu` element passes carry the ReLU and its mask.
  if (k.startsWith('batchnorm2d')) return `batchnorm ${phase}${fusion.bnRelu ? ' (+relu)' : ''}`;
  if (k.startsWith('relu')) return `relu ${phase}`;
  if (k.startsWith('linear')) return `linear ${phase}`;
  return `${phase}, other`;
}

/** FLOPs of each conv group, from the shapes the network launches and the version each runs. */
function convGroupFlops(rt: Runtime, uses: ReturnType<typeof kernelUses>, firstCIn: number): Map<string, number> {
  const flops = new Map<string, number>();
  const add = (group: string, f: number) => flops.set(group, (flops.get(group) ?? 0) + f);
  for (const use of uses) {
    if (!use.op.startsWith('conv2d.')) continue;
    const s = use.shape as Conv2dShape;
    const family = variantFamily(currentVersion(rt, use.op, s));
    const first = s.cIn === firstCIn && use.op !== 'conv2d.dx' ? ', layer 1' : '';
    const what = use.op === 'conv2d.forward' ? 'forward' : use.op === 'conv2d.dx' ? 'dx' : 'dW';
    add(`conv ${what === 'dW' && family === 'gemm' ? 'gemm' : family} ${what}${first}`, conv2dFlops(s));
  }
  return flops;
}

/** Profiles the second training step of a fresh `config` patch network at `batch`. */
export async function measureStepSplit(rt: Runtime, name: string, config: ModelConfig, batch: number, fmaCeiling: number | null): Promise<StepSplit> {
  const size = config.patch.size;
  const net = buildPatchNetwork(rt, config, 7).train();
  const adam = new Adam(net.parameters(), { lr: 1e-3 });
  const x = Tensor.fromArray(rt, Float32Array.from({ length: batch * 3 * size * size }, (_, i) => ((i * 2654435761) >>> 0) / 4294967296), [batch, 3, size, size]);
  const labels = rt.upload(Uint32Array.from({ length: batch }, (_, i) => i % config.classes.length));
  const uses = kernelUses(net, [batch, 3, size, size], true);
  const step = trainingStep(net, adam, x, labels);
  try {
    step(0);
    await rt.sync();
    rt.startProfile();
    step(1);
    const timings = await rt.stopProfile();
    const firstInputBytes = batch * 3 * size * size * 4;
    let phase: Phase = 'forward';
    const groups = new Map<string, { ms: number; dispatches: number }>();
    for (const t of timings) {
      if (t.kernel.startsWith('log_softmax_nll_backward')) phase = 'backward';
      if (t.kernel.startsWith('adam')) phase = 'optimizer';
      const g = groupOf(t, phase, firstInputBytes);
      const entry = groups.get(g) ?? { ms: 0, dispatches: 0 };
      entry.ms += t.ms;
      entry.dispatches++;
      groups.set(g, entry);
    }
    const totalMs = [...groups.values()].reduce((s, g) => s + g.ms, 0);
    const flops = convGroupFlops(rt, uses, 3);
    const rows: SplitRow[] = [...groups.entries()]
      .map(([group, g]) => {
        const f = flops.get(group) ?? null;
        const gflops = f !== null && g.ms > 0 ? f / (g.ms * 1e6) : null;
        return { group, ms: g.ms, share: g.ms / totalMs, dispatches: g.dispatches, flops: f, gflops, ofCeiling: gflops !== null && fmaCeiling ? gflops / fmaCeiling : null };
      })
      .sort((a, b) => b.ms - a.ms);
    const convVersions = [...new Set(uses.filter((u) => u.op.startsWith('conv2d.')).map((u) => {
      const c = u.shape as Conv2dShape;
      return `${u.op} ${c.cIn}→${c.cOut} ${c.h}² k${c.kh}s${c.stride}: ${currentVersion(rt, u.op, c)}`;
    }))];
    return { name, batch, rows, totalMs, stepFlops: stepFlops(uses), convVersions };
  } finally {
    x.release();
    rt.release(labels);
    adam.destroy();
    net.destroy();
  }
}

/** The split as a Markdown table. */
export function formatStepSplit(s: StepSplit, fmaCeiling: number | null): string {
  const pct = (v: number | null) => (v === null ? '' : `${(100 * v).toFixed(0)}%`);
  const whole = s.stepFlops / (s.totalMs * 1e6);
  const lines = [
    `| ${s.name}, batch ${s.batch}: op | GPU ms | share | dispatches | GFLOP/s | % of FMA ceiling |`,
    '|---|---:|---:|---:|---:|---:|',
    ...s.rows.map((r) => `| ${r.group} | ${r.ms.toFixed(1)} | ${pct(r.share)} | ${r.dispatches} | ${r.gflops === null ? '' : r.gflops.toFixed(2)} | ${pct(r.ofCeiling)} |`),
    `| **whole step** (3 × forward FLOPs) | ${s.totalMs.toFixed(1)} | 100% | ${s.rows.reduce((n, r) => n + r.dispatches, 0)} | ${whole.toFixed(2)} | ${fmaCeiling ? pct(whole / fmaCeiling) : ''} |`,
  ];
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { createNodeRuntime } = await import('../src/kernels/node.ts');
  const { PRESETS, validateConfig } = await import('../src/nn/config.ts');
  const { readFileSync } = await import('node:fs');
  const { benchCases } = await import('./cases.ts');
  const { useKernelsFromEnv } = await import('../src/train/kernels.ts');
  const rt = await createNodeRuntime();
  const args = process.argv.slice(2);
  const flag = args.indexOf('--kernels');
  if (flag >= 0) process.env.LUNGPATH_KERNELS = args.splice(flag, 2)[1];
  const which = args[0] ?? 'seed';
  const batch = Number(args[1] ?? 1);
  const config = PRESETS[which] ?? validateConfig(JSON.parse(readFileSync(which, 'utf8')));
  // The kernel table for the step's launches (none: the heuristic), decided before anything is timed.
  await useKernelsFromEnv(rt, () => {
    const probe = buildPatchNetwork(rt, config, 7).train();
    const uses = kernelUses(probe, [batch, 3, config.patch.size, config.patch.size], true);
    probe.destroy();
    return uses;
  });
  // The FMA ceiling, as the bench's first row measures it (median of 5).
  const fma = benchCases(rt).find((c) => c.name === 'ceiling: fma');
  let ceiling: number | null = null;
  if (fma) {
    const state = fma.setup();
    const times: number[] = [];
    for (let i = 0; i < 6; i++) {
      const t0 = performance.now();
      fma.run(state);
      await rt.sync();
      if (i > 0) times.push(performance.now() - t0);
    }
    fma.teardown(state);
    times.sort((a, b) => a - b);
    ceiling = fma.work / ((times[2] as number) * 1e6);
  }
  const split = await measureStepSplit(rt, `${which} patch net`, config, batch, ceiling);
  console.log(`FMA ceiling ${ceiling?.toFixed(2)} GFLOP/s; kernels: ${process.env.LUNGPATH_KERNELS ?? 'heuristic'}`);
  for (const v of split.convVersions) console.log(`  ${v}`);
  console.log(formatStepSplit(split, ceiling));
  rt.destroy();
  process.exit(0);
}
