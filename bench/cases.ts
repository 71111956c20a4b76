/**
 * The benchmark's cases: each allocates its inputs once (random values), launches one kernel per
 * `run`, and declares its work (FLOPs or bytes moved) so the harness can report a rate.
 * Shapes are the seed network's (MODEL-SPEC.md).
 */
import { adamStep } from '../src/kernels/adam.ts';
import { currentVersion, type KernelRequest } from '../src/kernels/autotune.ts';
import { batchNorm2dBackward, batchNorm2dForwardTrain } from '../src/kernels/batchnorm2d.ts';
import { conv2dBackwardData, conv2dForward } from '../src/kernels/conv2d.ts';
import { conv2dFlops, conv2dOutputSize, type Conv2dShape } from '../src/kernels/conv2d_shape.ts';
import { conv2dBackwardBias, conv2dBackwardWeight } from '../src/kernels/conv2d_weight_grad.ts';
import { cropPatches } from '../src/kernels/crop_patches.ts';
import { dropoutForward } from '../src/kernels/dropout.ts';
import { defineKernel, flatWorkgroups, Uniforms } from '../src/kernels/kernel.ts';
import { linearBackwardData, linearBackwardWeight, linearForward } from '../src/kernels/linear.ts';
import { logSoftmaxForward, logSoftmaxNllBackward } from '../src/kernels/log_softmax_nll.ts';
import { reluBackward, reluForward } from '../src/kernels/relu.ts';
import type { Runtime } from '../src/kernels/runtime.ts';
import { SEED_CONFIG, TINY_CONFIG, type ModelConfig } from '../src/nn/config.ts';
import { buildPatchNetwork, type TwoPartNetwork } from '../src/nn/networks.ts';
import { kernelUses } from '../src/nn/kernel_uses.ts';
import { logSoftmaxNllLoss } from '../src/nn/ops.ts';
import { Adam } from '../src/nn/optim.ts';
import { Tape } from '../src/nn/tape.ts';
import { Tensor } from '../src/nn/tensor.ts';
import { patchNetworkForwardFlops } from './tfjs_network.ts';

export interface BenchCase {
  name: string;
  shape: string;
  unit: 'GFLOP/s' | 'GB/s';
  /** FLOPs or bytes per run. */
  work: number;
  /** The kernel version the launch runs (rt.kernels, else the heuristic). */
  variant?: string;
  /** Multi-version kernels it launches (for LUNGPATH_KERNELS=autotune: src/train/kernels.ts useKernelsFromEnv). */
  kernels?: KernelRequest[];
  /** This row measures the adapter's ceiling for its unit. */
  ceiling?: boolean;
  setup(): GPUBuffer[];
  run(buffers: GPUBuffer[]): void;
  teardown(buffers: GPUBuffer[]): void;
}

function random(rt: Runtime, n: number, seed: number, scale = 1): GPUBuffer {
  const data = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = scale * (s / 4294967296 - 0.5);
  }
  return rt.upload(data);
}

/** A case whose run allocates an output (or several) that is released straight away. */
function launch(rt: Runtime, base: Omit<BenchCase, 'setup' | 'run' | 'teardown'>, inputs: () => GPUBuffer[], body: (b: GPUBuffer[]) => GPUBuffer | GPUBuffer[] | void): BenchCase {
  return {
    ...base,
    setup: inputs,
    run: (b) => {
      const out = body(b);
      for (const buffer of out ? ([] as GPUBuffer[]).concat(out) : []) rt.release(buffer);
    },
    teardown: (b) => b.forEach((buffer) => rt.release(buffer)),
  };
}

const fmaKernel = defineKernel({ name: 'bench_fma', shader: 'bench_ceiling', entryPoint: 'fma_peak', bindings: ['write'], uniforms: true, constants: { WG: 256 } });
const copyKernel = defineKernel({ name: 'bench_copy', shader: 'bench_ceiling', entryPoint: 'copy', bindings: ['write', 'read'], uniforms: true, constants: { WG: 256 } });

export function ceilingCases(rt: Runtime): BenchCase[] {
  const invocations = 64 * 1024;
  const rounds = 64;
  const vec4s = 4 * 1024 * 1024; // 64 MiB each way
  return [
    launch(rt, { name: 'ceiling: fma', shape: `${invocations} lanes × ${rounds * 128} FMA`, unit: 'GFLOP/s', work: 2 * invocations * rounds * 128, ceiling: true }, () => [rt.alloc(invocations * 16)], ([dst]) => {
      rt.dispatch(fmaKernel, { bindings: [dst as GPUBuffer], uniforms: new Uniforms().u32(invocations, rounds).f32(0.999), workgroups: flatWorkgroups(invocations / 256) });
    }),
    launch(rt, { name: 'ceiling: copy', shape: '64 MiB vec4', unit: 'GB/s', work: 2 * vec4s * 16, ceiling: true }, () => [rt.alloc(vec4s * 16), rt.alloc(vec4s * 16)], ([dst, src]) => {
      rt.dispatch(copyKernel, { bindings: [dst as GPUBuffer, src as GPUBuffer], uniforms: new Uniforms().u32(vec4s), workgroups: flatWorkgroups(vec4s / 256) });
    }),
  ];
}

export function convCases(rt: Runtime, label: string, s: Conv2dShape): BenchCase[] {
  const { ho, wo } = conv2dOutputSize(s);
  const xs = s.n * s.cIn * s.h * s.w;
  const ys = s.n * s.cOut * ho * wo;
  const ws = s.cOut * s.cIn * s.kh * s.kw;
  const shape = `${s.n}×${s.cIn}→${s.cOut} ${s.h}² k${s.kh}s${s.stride}`;
  const flops = conv2dFlops(s);
  const inputs = () => [random(rt, xs, 1), random(rt, ws, 2, 0.2), random(rt, s.cOut, 3), random(rt, ys, 4)];
  return [
    launch(rt, { name: `conv ${label} forward`, shape, unit: 'GFLOP/s', work: flops, variant: currentVersion(rt, 'conv2d.forward', s), kernels: [{ op: 'conv2d.forward', shape: s }] }, inputs, ([x, w, b]) => conv2dForward(rt, x!, w!, b!, s)),
    launch(rt, { name: `conv ${label} dx`, shape, unit: 'GFLOP/s', work: flops, variant: currentVersion(rt, 'conv2d.dx', s), kernels: [{ op: 'conv2d.dx', shape: s }] }, inputs, ([, w, , dy]) => conv2dBackwardData(rt, dy!, w!, s)),
    launch(rt, { name: `conv ${label} dW`, shape, unit: 'GFLOP/s', work: flops, variant: currentVersion(rt, 'conv2d.dw', s), kernels: [{ op: 'conv2d.dw', shape: s }] }, inputs, ([x, , , dy]) => conv2dBackwardWeight(rt, x!, dy!, s)),
    launch(rt, { name: `conv ${label} db`, shape, unit: 'GB/s', work: ys * 4 }, inputs, ([, , , dy]) => conv2dBackwardBias(rt, dy!, s)),
  ];
}

/**
 * One Adam training step of a Level-1 network on a random batch: forward under the tape, NLL on
 * log_softmax, backward, Adam; nothing read back. Work = 3 × forward FLOPs, as the TF.js row.
 */
export function trainStepCase(rt: Runtime, name: string, config: ModelConfig, batch: number): BenchCase {
  const size = config.patch.size;
  const forward = patchNetworkForwardFlops(config, batch);
  let state: { net: TwoPartNetwork; adam: Adam; x: Tensor; t: GPUBuffer } | null = null;
  let step = 0;
  const probe = buildPatchNetwork(rt, config, 7);
  const parameters = probe.parameterCount();
  const kernels = kernelUses(probe, [batch, 3, size, size], true);
  probe.destroy();
  return {
    name,
    shape: `${batch}×3×${size}² (${(forward / 1e9).toFixed(forward < 1e9 ? 3 : 2)} GFLOP fwd, ${parameters} params)`,
    unit: 'GFLOP/s',
    work: 3 * forward,
    kernels,
    setup: () => {
      const net = buildPatchNetwork(rt, config, 7).train();
      state = {
        net,
        adam: new Adam(net.parameters(), { lr: 1e-3 }),
        x: Tensor.fromArray(rt, Float32Array.from({ length: batch * 3 * size * size }, (_, i) => ((i * 2654435761) >>> 0) / 4294967296), [batch, 3, size, size]),
        t: rt.upload(Uint32Array.from({ length: batch }, (_, i) => i % config.classes.length)),
      };
      return [];
    },
    run: () => {
      const s = state as NonNullable<typeof state>;
      s.adam.zeroGrad();
      const tape = new Tape();
      const logits = s.net.forward(s.x, { tape, seed: step++ });
      const { logp, loss } = logSoftmaxNllLoss(logits, s.t, tape);
      logits.release();
      logp.release();
      tape.backward(loss);
      loss.release();
      s.adam.update();
    },
    teardown: () => {
      const s = state as NonNullable<typeof state>;
      s.x.release();
      rt.release(s.t);
      s.adam.destroy();
      s.net.destroy();
      state = null;
    },
  };
}

export function benchCases(rt: Runtime): BenchCase[] {
  const bn = { n: 8, c: 64, h: 128, w: 128 };
  const bnSize = bn.n * bn.c * bn.h * bn.w;
  const lin = { n: 16, inFeatures: 4096, outFeatures: 4 };
  const params = 1_219_237;
  const image = { width: 2560, height: 2560 };
  const patch = { size: 512, stride: 256 };
  return [
    ...ceilingCases(rt),
    ...convCases(rt, '3x3', { n: 8, cIn: 64, h: 128, w: 128, cOut: 64, kh: 3, kw: 3, stride: 1, pad: 1 }),
    ...convCases(rt, '3x3', { n: 8, cIn: 16, h: 256, w: 256, cOut: 16, kh: 3, kw: 3, stride: 1, pad: 1 }),
    ...convCases(rt, '2x2s2', { n: 8, cIn: 64, h: 128, w: 128, cOut: 64, kh: 2, kw: 2, stride: 2, pad: 0 }),
    ...convCases(rt, '1x1', { n: 8, cIn: 256, h: 64, w: 64, cOut: 1, kh: 1, kw: 1, stride: 1, pad: 0 }),
    launch(rt, { name: 'batchnorm train forward', shape: '8×64×128²', unit: 'GB/s', work: 3 * bnSize * 4 }, () => [random(rt, bnSize, 5), random(rt, 64, 6), random(rt, 64, 7), random(rt, 64, 8), random(rt, 64, 9)], (b) => {
      const out = batchNorm2dForwardTrain(rt, b[0]!, b[1]!, b[2]!, b[3]!, b[4]!, bn);
      return [out.y, out.mean, out.invStd];
    }),
    launch(rt, { name: 'batchnorm backward', shape: '8×64×128²', unit: 'GB/s', work: 5 * bnSize * 4 }, () => [random(rt, bnSize, 5), random(rt, bnSize, 6), random(rt, 64, 7), random(rt, 64, 8), random(rt, 64, 9)], (b) => {
      const g = batchNorm2dBackward(rt, b[1]!, b[0]!, b[2]!, b[3]!, b[4]!, bn, true);
      return [g.dx, g.dGamma, g.dBeta];
    }),
    launch(rt, { name: 'relu forward', shape: '8×64×128²', unit: 'GB/s', work: 2 * bnSize * 4 }, () => [random(rt, bnSize, 10)], ([x]) => reluForward(rt, x!, bnSize)),
    launch(rt, { name: 'relu backward', shape: '8×64×128²', unit: 'GB/s', work: 3 * bnSize * 4 }, () => [random(rt, bnSize, 11), random(rt, bnSize, 12)], ([dy, y]) => reluBackward(rt, dy!, y!, bnSize)),
    launch(rt, { name: 'dropout forward', shape: '16×128', unit: 'GB/s', work: 2 * 16 * 128 * 4 }, () => [random(rt, 16 * 128, 13)], ([x]) => dropoutForward(rt, x!, 16 * 128, 0.5, 1, 0)),
    launch(rt, { name: 'linear forward', shape: '16×4096→4', unit: 'GFLOP/s', work: 2 * 16 * 4096 * 4 }, () => [random(rt, 16 * 4096, 14), random(rt, 4 * 4096, 15), random(rt, 4, 16), random(rt, 16 * 4, 17)], ([x, w, b]) => linearForward(rt, x!, w!, b!, lin)),
    launch(rt, { name: 'linear dx + dW', shape: '16×4096→4', unit: 'GFLOP/s', work: 4 * 16 * 4096 * 4 }, () => [random(rt, 16 * 4096, 14), random(rt, 4 * 4096, 15), random(rt, 16 * 4, 17)], ([x, w, dy]) => [linearBackwardData(rt, dy!, w!, lin), linearBackwardWeight(rt, x!, dy!, lin)]),
    launch(rt, { name: 'log-softmax + NLL backward', shape: '16×4', unit: 'GB/s', work: 3 * 64 * 4 }, () => [random(rt, 64, 18), rt.upload(new Uint32Array(16))], ([z, t]) => {
      const logp = logSoftmaxForward(rt, z!, { n: 16, classes: 4 });
      const dz = logSoftmaxNllBackward(rt, logp, t!, { n: 16, classes: 4 });
      return [logp, dz];
    }),
    launch(rt, { name: 'adam', shape: `${params} parameters`, unit: 'GB/s', work: 7 * params * 4 }, () => [random(rt, params, 19), random(rt, params, 20), random(rt, params, 21), random(rt, params, 22, 0)], ([p, g, m, v]) => {
      adamStep(rt, p!, g!, m!, v!, params, { lr: 1e-3, step: 1 });
    }),
    trainStepCase(rt, 'train step tiny patch net', TINY_CONFIG, 16),
    trainStepCase(rt, 'train step seed patch net', SEED_CONFIG, 1),
    launch(rt, { name: 'crop 16 patches, variant 5', shape: '2560² RGB8 → 16×3×512²', unit: 'GB/s', work: 16 * 3 * 512 * 512 * 5 }, () => [rt.upload(new Uint8Array(image.width * image.height * 3).fill(7))], ([img]) => cropPatches(rt, img!, image, patch, { variant: 5, first: 0, count: 16 })),
  ];
}
