#!/usr/bin/env node
/**
 * The short table of the one-shot GPU check: lungpath's rows (ours.jsonl, bench/gpu/ours.ts) beside
 * PyTorch's (torch.jsonl, bench/gpu/torch_bench.py) — ms per launch, our TFLOP/s, % of the GPU's fp32
 * peak, ours / PyTorch — and the issue's GPU targets (3×3 conv forward ≥ 40% of fp32 peak; seed
 * training step ≥ 50% of PyTorch fp32). Plain Node, no dependencies: it runs under the carried node.
 *
 * fp32 peak: PEAK_FP32_GFLOPS if set, else the datasheet figure for the GPU PyTorch names (a lead,
 * not a measurement), else — on a machine without one — our own WGSL FMA ceiling row.
 *
 *   node bench/gpu/report.mjs ours.jsonl torch.jsonl [--markdown]
 */
import { readFileSync } from 'node:fs';

/** Datasheet dense fp32 (non-tensor) peaks, GFLOP/s; leads only (H200.md: "plain fp32 about 67"). */
const DATASHEET_FP32 = { 'NVIDIA H200': 66900, 'NVIDIA H100 80GB HBM3': 66900, 'NVIDIA H100': 66900, 'NVIDIA A100-SXM4-80GB': 19500, 'NVIDIA GeForce RTX 3090': 35600 };

const [oursPath, torchPath] = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const markdown = process.argv.includes('--markdown');
const read = (path) => {
  try {
    return readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  } catch {
    return [];
  }
};
const ours = read(oursPath);
const torch = read(torchPath);
const one = (rows, kind) => rows.find((r) => r.kind === kind) ?? {};
const adapter = one(ours, 'adapter');
const device = one(torch, 'device');
const fma = ours.find((r) => r.kind === 'ceiling' && r.name === 'ceiling: fma');
const matmul = torch.find((r) => r.kind === 'ceiling');
const envPeak = Number(process.env.PEAK_FP32_GFLOPS);
const [peak, peakFrom] = envPeak > 0 ? [envPeak, 'PEAK_FP32_GFLOPS'] : DATASHEET_FP32[device.name] ? [DATASHEET_FP32[device.name], `datasheet, ${device.name}`] : fma ? [fma.value, 'our WGSL FMA ceiling (no datasheet figure for this device)'] : [null, 'unknown'];

const shapeText = (s) => `${s.n}×${s.cIn}→${s.cOut} ${s.h}² k${s.kh}s${s.stride}`;
const key = (r) => (r.kind === 'conv' ? `${r.dir} ${shapeText(r.shape)}` : `step ${r.batch}`);
const theirs = new Map(torch.filter((r) => r.kind === 'conv' || r.kind === 'step').map((r) => [key(r), r]));
const pct = (v) => (v == null || !Number.isFinite(v) ? '—' : `${(100 * v).toFixed(1)}%`);
const num = (v, d = 2) => (v == null || !Number.isFinite(v) ? '—' : v.toFixed(d));
/** A rate given in GFLOP/s, in TFLOP/s from 1000 up. */
const rate = (g) => (g == null ? '—' : g >= 1000 ? `${(g / 1000).toFixed(2)} TFLOP/s` : `${g.toFixed(2)} GFLOP/s`);

const rows = ours
  .filter((r) => r.kind === 'conv' || r.kind === 'step')
  .map((r) => {
    const t = theirs.get(key(r));
    const op = r.kind === 'conv' ? `${r.label}` : `${r.name}`;
    const shape = r.kind === 'conv' ? shapeText(r.shape) : `batch ${r.batch}`;
    return { op, shape, ours: r.ms, torch: t?.ms ?? null, tflops: r.gflops / 1000, ofPeak: peak ? r.gflops / peak : null, ratio: t ? t.ms / r.ms : null, variant: r.variant ?? '', r };
  });

const header = ['op', 'shape', 'ours ms', 'PyTorch ms', 'ours GFLOP/s', '% of fp32 peak', 'ours / PyTorch', 'variant'];
const cells = rows.map((x) => [x.op, x.shape, num(x.ours, 3), num(x.torch, 3), num(x.tflops * 1000, 1), pct(x.ofPeak), x.ratio == null ? '—' : `${x.ratio.toFixed(2)}×`, x.variant]);

console.log(`\nGPU check — adapter (Dawn): ${adapter.adapter ?? '?'}; PyTorch ${device.torch ?? '?'} on ${device.name ?? '?'} (cuDNN ${device.cudnn ?? '—'}, TF32 off: ${JSON.stringify(device.tf32 ?? null)}, cudnn.benchmark ${device.cudnn_benchmark ?? '?'})`);
console.log(`fp32 peak used: ${peak ? `${rate(peak)} (${peakFrom})` : 'unknown'}; measured: our WGSL FMA loop ${rate(fma?.value)}, PyTorch ${matmul?.name ?? 'fp32 matmul'} ${rate(matmul?.value)}`);
const auto = one(ours, 'autotune');
if (auto.mode) console.log(`kernel versions: ${auto.mode} (${auto.shapes} shapes, ${num(auto.seconds, 1)} s)`);
if (markdown) {
  console.log(`\n| ${header.join(' | ')} |\n|${header.map((_, i) => (i < 2 || i === 7 ? '---' : '---:')).join('|')}|`);
  for (const c of cells) console.log(`| ${c.join(' | ')} |`);
} else {
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => String(c[i]).length)));
  const line = (c) => c.map((v, i) => (i < 2 || i === 7 ? String(v).padEnd(widths[i]) : String(v).padStart(widths[i]))).join('  ');
  console.log(`\n${line(header)}`);
  for (const c of cells) console.log(line(c));
}

// The issue's targets on a GPU.
const fwd3 = rows.filter((x) => x.r.kind === 'conv' && x.r.dir === 'forward' && x.r.shape.kh === 3 && x.r.shape.cIn >= 16);
const best3 = fwd3.reduce((a, b) => (a && a.ofPeak >= b.ofPeak ? a : b), null);
const steps = rows.filter((x) => x.r.kind === 'step');
console.log('');
if (best3) console.log(`target 3×3 conv forward ≥ 40% of fp32 peak: best ${pct(best3.ofPeak)} (${best3.shape}); all: ${fwd3.map((x) => pct(x.ofPeak)).join(', ')} → ${best3.ofPeak >= 0.4 ? 'met' : 'NOT met'}`);
for (const s of steps) console.log(`target seed training step ≥ 50% of PyTorch fp32, ${s.shape}: ${s.ratio == null ? 'PyTorch not measured' : `${(100 * s.ratio).toFixed(0)}% → ${s.ratio >= 0.5 ? 'met' : 'NOT met'}`}`);
