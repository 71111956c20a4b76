/**
 * Proves lungpath → PyTorch: trains each `tiny` network for two steps on random data (so the
 * BatchNorm running statistics are not trivial), saves its weights as safetensors, and records the
 * eval-mode log-probabilities of a fixed input in the file's metadata. Then
 * `python3 tools/make-golden.py --check-ours DIR` loads each file into the torch module with
 * load_state_dict(strict=True) and compares torch's output with ours.
 *
 *   npx tsx tools/export-for-torch.ts [DIR]      (default /tmp/lungpath-interchange)
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createNodeRuntime } from '../src/kernels/node.ts';
import { derivedSizes, TINY_CONFIG } from '../src/nn/config.ts';
import { writeFileAtomic } from '../src/nn/files.ts';
import { buildImageNetwork, buildPatchNetwork, type TwoPartNetwork } from '../src/nn/networks.ts';
import { logSoftmax, logSoftmaxNllLoss } from '../src/nn/ops.ts';
import { Adam } from '../src/nn/optim.ts';
import { Rng } from '../src/nn/random.ts';
import { Tape } from '../src/nn/tape.ts';
import { Tensor } from '../src/nn/tensor.ts';
import { weightsToSafetensors } from '../src/nn/weights.ts';

const dir = process.argv[2] ?? '/tmp/lungpath-interchange';
mkdirSync(dir, { recursive: true });
const rt = await createNodeRuntime();
const config = { ...TINY_CONFIG, level2: { ...TINY_CONFIG.level2, dropout: 0 } };
const { featureMapSize, level2Patches } = derivedSizes(config);

/** The fixed input both sides compute: x[i] = 0.5 + 0.5·sin(0.01·i). */
function fixedInput(shape: number[]): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  return Float32Array.from({ length: n }, (_, i) => 0.5 + 0.5 * Math.sin(0.01 * i));
}

async function exportNetwork(name: string, net: TwoPartNetwork, inputShape: number[]): Promise<void> {
  const rng = new Rng(42);
  const adam = new Adam(net.parameters(), { lr: 1e-3 });
  const n = 4;
  const shape = [n, ...inputShape.slice(1)];
  for (let step = 0; step < 2; step++) {
    const x = Tensor.fromArray(rt, Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.next()), shape);
    const t = rt.upload(Uint32Array.from({ length: n }, (_, i) => i % 4));
    const tape = new Tape();
    adam.zeroGrad();
    const logits = net.train().forward(x, { tape, seed: step });
    const { logp, loss } = logSoftmaxNllLoss(logits, t, tape);
    tape.backward(loss);
    adam.update();
    [x, logits, logp, loss].forEach((tensor) => tensor.release());
    rt.release(t);
  }
  net.eval();
  const input = Tensor.fromArray(rt, fixedInput(inputShape), inputShape);
  const logits = net.forward(input, { tape: null, seed: 0 });
  const logp = logSoftmax(logits);
  const values = [...(await logp.read())];
  const bytes = await weightsToSafetensors(net, { config: JSON.stringify(config), check_input_shape: JSON.stringify(inputShape), check_logp: JSON.stringify(values) });
  writeFileAtomic(join(dir, `${name}.safetensors`), bytes);
  console.log(`${name}: wrote ${join(dir, `${name}.safetensors`)}; eval log-probabilities ${values.map((v) => v.toFixed(6)).join(' ')}`);
  [input, logits, logp].forEach((tensor) => tensor.release());
  adam.destroy();
}

await exportNetwork('level1', buildPatchNetwork(rt, config, 11), [1, 3, config.patch.size, config.patch.size]);
await exportNetwork('level2', buildImageNetwork(rt, config, 12), [1, level2Patches, featureMapSize, featureMapSize]);
rt.destroy();
