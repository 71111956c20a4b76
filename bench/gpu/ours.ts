/**
 * The lungpath half of the one-shot GPU check (bench/gpu/run.sh): the adapter, its FMA and copy
 * ceilings, every distinct convolution of the seed patch network (forward, dx, dW) at one batch, and
 * a whole seed patch-net training step at the given batches — written as JSON lines for
 * bench/gpu/report.mjs to set beside PyTorch's (bench/gpu/torch_bench.py, same shapes and names).
 * Kernel versions: autotuned on the adapter first (what `lungpath train` runs), unless
 * LUNGPATH_KERNELS says otherwise.
 *
 * Timing: after a warm-up launch (compilation), each sample records `k` launches back to back and
 * waits once, k chosen so a sample lasts ≥ `--sample-ms`; the figure is the median of 5 samples of
 * ms per launch. Nothing is read back.
 *
 * Bundled by bench/gpu/prepare.sh into one file that runs under a plain `node` with Dawn beside it:
 *   node ours.mjs --out ours.jsonl --conv-batch 16 --step-batches 16,64
 */
import '../spin_polls.ts';
import { appendFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { conv2dFlops, type Conv2dShape } from '../../src/kernels/conv2d_shape.ts';
import { describeAdapter } from '../../src/kernels/device.ts';
import { createNodeRuntime } from '../../src/kernels/node.ts';
import type { Runtime } from '../../src/kernels/runtime.ts';
import { SEED_CONFIG, type ModelConfig } from '../../src/nn/config.ts';
import { kernelUses } from '../../src/nn/kernel_uses.ts';
import { buildPatchNetwork } from '../../src/nn/networks.ts';
import { installKernelChoices } from '../../src/kernels/autotune.ts';
import { useKernelsFromEnv } from '../../src/train/kernels.ts';
import { ceilingCases, convCases, trainStepCase, type BenchCase } from '../cases.ts';

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: 'ours.jsonl' },
    'conv-batch': { type: 'string', default: '16' },
    'step-batches': { type: 'string', default: '16,64' },
    'sample-ms': { type: 'string', default: '50' },
    config: { type: 'string', default: 'seed' },
  },
});
const convBatch = Number(values['conv-batch']);
const stepBatches = (values['step-batches'] as string).split(',').filter(Boolean).map(Number);
const sampleMs = Number(values['sample-ms']);
const out = values.out as string;
writeFileSync(out, '');
const emit = (row: Record<string, unknown>) => {
  appendFileSync(out, `${JSON.stringify(row)}\n`);
  console.log(JSON.stringify(row));
};

/** The distinct convolutions of the patch network at batch n, first-layer first, with a layer label. */
export function networkConvs(rt: Runtime, config: ModelConfig, n: number): { label: string; shape: Conv2dShape }[] {
  const probe = buildPatchNetwork(rt, config, 7);
  const uses = kernelUses(probe, [n, 3, config.patch.size, config.patch.size], false);
  probe.destroy();
  const seen = new Map<string, { label: string; shape: Conv2dShape }>();
  for (const u of uses) {
    if (u.op !== 'conv2d.forward') continue;
    const s = u.shape as Conv2dShape;
    const key = `${s.cIn}-${s.cOut}-${s.h}-${s.kh}-${s.stride}`;
    if (!seen.has(key)) seen.set(key, { label: `${s.kh}x${s.kw}${s.stride > 1 ? `s${s.stride}` : ''}`, shape: s });
  }
  return [...seen.values()];
}

/** Median ms per launch (see the header). */
async function time(rt: Runtime, c: BenchCase): Promise<number> {
  const state = c.setup();
  try {
    c.run(state);
    await rt.sync();
    let t0 = performance.now();
    c.run(state);
    await rt.sync();
    const once = performance.now() - t0;
    const k = Math.max(1, Math.min(200, Math.ceil(sampleMs / Math.max(once, 0.01))));
    const samples: number[] = [];
    for (let s = 0; s < 5; s++) {
      t0 = performance.now();
      for (let i = 0; i < k; i++) c.run(state);
      await rt.sync();
      samples.push((performance.now() - t0) / k);
    }
    samples.sort((a, b) => a - b);
    return samples[2] as number;
  } finally {
    c.teardown(state);
  }
}

const rt = await createNodeRuntime();
const config = values.config === 'seed' ? SEED_CONFIG : (await import('../../src/nn/config.ts')).TINY_CONFIG;
emit({ kind: 'adapter', adapter: describeAdapter(rt.adapter), vendor: rt.adapter.vendor, architecture: rt.adapter.architecture, features: rt.adapter.features.join(' '), maxBinding: rt.maxBindingBytes });

const convs = networkConvs(rt, config, convBatch);
const stepCases = () => stepBatches.map((b) => trainStepCase(rt, `train step ${values.config} patch net`, config, b));
const convRows = () => convs.flatMap(({ label, shape }) => convCases(rt, label, shape).filter((c) => !c.name.endsWith(' db')));
process.env.LUNGPATH_KERNELS ||= 'autotune';
const tuneStart = performance.now();
// Tuned: the conv rows and the step at its first batch. Each check reads a whole output back, so
// the larger batches take the first batch's choices (same layer, other n) instead of a tune of their own.
const firstStep = stepBatches.slice(0, 1).map((b) => trainStepCase(rt, 'probe', config, b));
await useKernelsFromEnv(rt, () => [...convRows(), ...firstStep].flatMap((c) => c.kernels ?? []), () => {});
const tuned = rt.kernels.entries();
const widened = stepBatches.slice(1).flatMap((n) => tuned.filter((c) => c.shape.n === stepBatches[0]).map((c) => ({ ...c, shape: { ...c.shape, n } })));
if (widened.length) installKernelChoices(rt, [...tuned, ...widened], 'bench/gpu/ours.ts');
emit({ kind: 'autotune', mode: process.env.LUNGPATH_KERNELS, shapes: tuned.length, seconds: (performance.now() - tuneStart) / 1000, choices: tuned.map((c) => `${c.op} ${Object.values(c.shape).join('/')} ${c.variant}`) });

for (const c of ceilingCases(rt)) {
  const ms = await time(rt, c);
  emit({ kind: 'ceiling', name: c.name, unit: c.unit, value: c.work / (ms * 1e6), ms });
}
for (const [i, c] of convRows().entries()) {
  const { shape } = convs[Math.floor(i / 3)] as { shape: Conv2dShape };
  const dir = c.name.split(' ').pop() as string;
  const ms = await time(rt, c);
  emit({ kind: 'conv', dir, label: c.name, shape, flops: conv2dFlops(shape), ms, gflops: conv2dFlops(shape) / (ms * 1e6), variant: c.variant });
}
for (const c of stepCases()) {
  const ms = await time(rt, c);
  const batch = Number(/^(\d+)×/.exec(c.shape)?.[1]);
  emit({ kind: 'step', name: c.name, batch, flops: c.work, ms, gflops: c.work / (ms * 1e6) });
}
emit({ kind: 'counters', ...rt.counters });
rt.destroy();
process.exit(0);
