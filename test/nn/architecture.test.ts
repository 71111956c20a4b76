/**
 * The network is described once (src/nn/architecture.ts); the other descriptions must agree with it:
 * the built modules (names, shapes, counts, kernel launches), tools/make-golden.py (its `tiny`
 * preset, and the state its torch modules wrote into the fixtures), and bench/tfjs_network.ts.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { patchNetworkParameterShapes } from '../../bench/tfjs_network.ts';
import { conv2dOutputSize } from '../../src/kernels/conv2d_shape.ts';
import { imageNetworkSpec, patchNetworkSpec, stateFloatCounts, stateShapes, type NetworkSpec } from '../../src/nn/architecture.ts';
import { SEED_CONFIG, TINY_CONFIG, type ModelConfig } from '../../src/nn/config.ts';
import { kernelUses } from '../../src/nn/kernel_uses.ts';
import { buildImageNetwork, buildPatchNetwork } from '../../src/nn/networks.ts';
import { parseSafetensors } from '../../src/nn/safetensors.ts';
import { gpu } from '../helpers/gpu.ts';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const deeper: ModelConfig = { ...TINY_CONFIG, level1: { widths: [4, 6, 8], downsample: [true, false, true] }, level2: { ...TINY_CONFIG.level2, hidden: [7] } };

function fixtureState(name: string, prefix: string): { name: string; shape: number[]; dtype: string }[] {
  const file = parseSafetensors(readFileSync(`${repo}test/fixtures/${name}`), name);
  return [...file.tensors.entries()].filter(([k]) => k.startsWith(prefix)).map(([k, t]) => ({ name: k.slice(prefix.length), shape: [...t.shape], dtype: t.dtype }));
}

/** The kernel requests the description implies, computed here independently of Module.trace. */
function expectedUses(spec: NetworkSpec, n: number, training: boolean): unknown[] {
  const uses: unknown[] = [];
  let [c, h, w] = spec.input;
  let first = true;
  for (const l of spec.features) {
    if (l.kind !== 'conv2d') continue;
    const s = { n, cIn: c, h, w, cOut: l.cOut, kh: l.kernel, kw: l.kernel, stride: l.stride, pad: l.pad };
    uses.push({ op: 'conv2d.forward', shape: s }, ...(training ? [...(first ? [] : [{ op: 'conv2d.dx', shape: s }]), { op: 'conv2d.dw', shape: s }] : []));
    ({ ho: h, wo: w } = conv2dOutputSize(s));
    c = l.cOut;
    first = false;
  }
  for (const l of spec.classifier) {
    if (l.kind !== 'linear') continue;
    const s = { n, inFeatures: l.inFeatures, outFeatures: l.outFeatures };
    uses.push({ op: 'linear.forward', shape: s }, ...(training ? [{ op: 'linear.dx', shape: s }, { op: 'linear.dw', shape: s }] : []));
  }
  return uses;
}

describe('the one description of the network', () => {
  it('the built networks hold exactly the described state, and trace the described kernel launches', async () => {
    const rt = await gpu();
    for (const config of [TINY_CONFIG, deeper]) {
      for (const [spec, net] of [[patchNetworkSpec(config), buildPatchNetwork(rt, config, 1)], [imageNetworkSpec(config), buildImageNetwork(rt, config, 1)]] as const) {
        expect(net.state().map((e) => ({ name: e.name, shape: [...e.shape], dtype: e.dtype }))).toEqual(stateShapes(spec));
        for (const training of [false, true]) expect(kernelUses(net, [2, ...spec.input], training)).toEqual(expectedUses(spec, 2, training));
        net.destroy();
      }
    }
  });

  it('the seed preset: MODEL-SPEC parameter counts, and float counts that include the running statistics', () => {
    const params = (spec: NetworkSpec) => stateShapes(spec).filter((e) => !/running_|num_batches/.test(e.name)).reduce((n, e) => n + e.shape.reduce((a, b) => a * b, 1), 0);
    expect(params(patchNetworkSpec(SEED_CONFIG))).toBe(1_219_237);
    expect(params(imageNetworkSpec(SEED_CONFIG))).toBe(414_149);
    const bnFloats = (spec: NetworkSpec) => 2 * stateShapes(spec).filter((e) => e.name.endsWith('.running_mean')).reduce((n, e) => n + (e.shape[0] as number), 0);
    expect(stateFloatCounts(SEED_CONFIG)).toEqual({ level1: 1_219_237 + bnFloats(patchNetworkSpec(SEED_CONFIG)), level2: 414_149 + bnFloats(imageNetworkSpec(SEED_CONFIG)) });
  });

  it("tools/make-golden.py: its tiny preset is TINY_CONFIG, and its torch networks' state (in the fixtures) is the described one", () => {
    const tiny = execFileSync('python3', ['-c', [
      'import ast, json, sys',
      'tree = ast.parse(open(sys.argv[1]).read())',
      'node = next(n for n in tree.body if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "TINY")',
      'print(json.dumps(ast.literal_eval(node.value)))',
    ].join('\n'), `${repo}tools/make-golden.py`], { encoding: 'utf8' });
    // level2.linearInit is how `lungpath train` draws Level 2's first weights; the fixtures carry
    // their own (init.*, drawn by make-golden.py as the original: N(0, 0.01)), so its TINY leaves it out.
    const { linearInit: drawnByTrain, ...level2 } = TINY_CONFIG.level2;
    expect(drawnByTrain).toBe('kaiming-normal');
    expect(JSON.parse(tiny)).toEqual({ ...TINY_CONFIG, level2 });
    expect(fixtureState('golden-tiny-level1.safetensors', 'init.')).toEqual(stateShapes(patchNetworkSpec(TINY_CONFIG)));
    expect(fixtureState('golden-tiny-level2.safetensors', 'init.')).toEqual(stateShapes(imageNetworkSpec(TINY_CONFIG)));
    expect(fixtureState('tiny-level1-torch-state.safetensors', '')).toEqual(stateShapes(patchNetworkSpec(TINY_CONFIG)));
    expect(fixtureState('tiny-level2-torch-state.safetensors', '')).toEqual(stateShapes(imageNetworkSpec(TINY_CONFIG)));
  });

  it("bench/tfjs_network.ts: the TF.js twin's trainable parameters are the described ones (TF.js layout)", () => {
    for (const config of [SEED_CONFIG, TINY_CONFIG, deeper]) {
      const described = stateShapes(patchNetworkSpec(config)).filter((e) => e.dtype === 'F32' && !/running_/.test(e.name));
      const toTfjs = (shape: number[]) => (shape.length === 4 ? [shape[2], shape[3], shape[1], shape[0]] : shape.length === 2 ? [shape[1], shape[0]] : shape);
      expect([...patchNetworkParameterShapes(config).entries()]).toEqual(described.map((e) => [e.name, toTfjs(e.shape)]));
    }
  });
});
