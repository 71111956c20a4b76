#!/usr/bin/env node
/**
 * Example (b): lungpath as a library for your own model. A small CNN — not lungpath's — built from
 * parameters and ops of `lungpath/nn`, one op of our own written against a `lungpath/kernels`
 * launcher and recorded on the tape, trained with the tape's backward and Adam on a toy task:
 * is the bright blob in the top or the bottom half of a noisy 8×8 image?
 *
 *   node examples/custom-cnn.mjs            prints loss and held-out accuracy as it learns
 *
 * test/examples/examples.test.ts runs `trainToyCnn` and checks that it learns.
 */
import { createNodeRuntime, scale } from 'lungpath/kernels';
import { Adam, conv2d, linear, logSoftmax, logSoftmaxNllLoss, Parameter, relu, reshape, Rng, Tape, Tensor } from 'lungpath/nn';

const SIZE = 8;

/** A batch of images [n, 1, 8, 8] with a 3×3 blob in the top (label 0) or bottom half (label 1). */
export function toyBatch(n, rng) {
  const x = new Float32Array(n * SIZE * SIZE);
  const labels = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const label = rng.nextU32() & 1;
    labels[i] = label;
    const top = label === 0 ? rng.nextU32() % 2 : 3 + (rng.nextU32() % 2);
    const left = rng.nextU32() % (SIZE - 2);
    for (let p = 0; p < SIZE * SIZE; p++) x[i * SIZE * SIZE + p] = 0.3 * rng.normal();
    for (let dy = 0; dy < 3; dy++) for (let dx = 0; dx < 3; dx++) x[i * SIZE * SIZE + (top + dy) * SIZE + left + dx] += 1;
  }
  return { x, labels };
}

/**
 * Our own op: y = alpha·x, with its backward dx = alpha·dy, recorded on the tape. `scale` is a
 * kernel launcher from lungpath/kernels (one WGSL pass); any launcher can be wrapped this way.
 */
function scaled(x, alpha, tape) {
  const y = new Tensor(x.rt, x.rt.alloc(x.bytes, 'scaled'), x.shape, 'scaled');
  scale(x.rt, y.buffer, x.buffer, x.size, alpha);
  if (tape?.wants([x])) {
    tape.record({
      op: 'scaled',
      inputs: [x],
      output: y,
      saved: [],
      backward: (dy) => {
        const dx = new Tensor(x.rt, x.rt.alloc(x.bytes, 'dscaled'), x.shape, 'dscaled');
        scale(x.rt, dx.buffer, dy.buffer, dy.size, alpha);
        return [dx];
      },
    });
  }
  return y;
}

/** conv 3×3 (1→8) → ReLU → conv 2×2 stride 2 (8→8) → ReLU → ×½ (our op) → linear (128→2). */
function buildModel(rt, rng) {
  const normal = (count, std) => new Float32Array(count).map(() => std * rng.normal());
  const p = (data, shape, name) => Parameter.fromArray(rt, data, shape, name);
  return {
    conv1: { w: p(normal(8 * 9, Math.sqrt(2 / 9)), [8, 1, 3, 3], 'conv1.weight'), b: p(new Float32Array(8), [8], 'conv1.bias') },
    conv2: { w: p(normal(8 * 8 * 4, Math.sqrt(2 / 32)), [8, 8, 2, 2], 'conv2.weight'), b: p(new Float32Array(8), [8], 'conv2.bias') },
    fc: { w: p(normal(2 * 128, 0.05), [2, 128], 'fc.weight'), b: p(new Float32Array(2), [2], 'fc.bias') },
  };
}

function parameters(m) {
  return [m.conv1.w, m.conv1.b, m.conv2.w, m.conv2.b, m.fc.w, m.fc.b];
}

/** Logits [n, 2]; every intermediate is released as soon as the next op has used it. */
function forward(m, x, tape) {
  const steps = [
    (h) => conv2d(h, m.conv1.w, m.conv1.b, 1, 1, tape, 'conv1'),
    (h) => relu(h, tape, 'relu1'),
    (h) => conv2d(h, m.conv2.w, m.conv2.b, 2, 0, tape, 'conv2'),
    (h) => relu(h, tape, 'relu2'),
    (h) => scaled(h, 0.5, tape),
    (h) => reshape(h, [h.shape[0], 128], tape),
    (h) => linear(h, m.fc.w, m.fc.b, tape, 'fc'),
  ];
  let h = x;
  for (const step of steps) {
    const next = step(h);
    if (h !== x) h.release();
    h = next;
  }
  return h;
}

async function accuracy(m, rt, test) {
  const x = Tensor.fromArray(rt, test.x, [test.labels.length, 1, SIZE, SIZE], 'x');
  const logits = forward(m, x, null);
  const logp = logSoftmax(logits);
  const values = await logp.read();
  [x, logits, logp].forEach((t) => t.release());
  let correct = 0;
  for (let i = 0; i < test.labels.length; i++) correct += Number((values[2 * i + 1] > values[2 * i] ? 1 : 0) === test.labels[i]);
  return correct / test.labels.length;
}

/**
 * Trains the toy CNN for `steps` Adam steps of `batch` images; returns the loss of every step and
 * the held-out accuracy (256 images) before and after.
 */
export async function trainToyCnn({ rt, steps = 60, batch = 32, lr = 0.01, seed = 1, log = () => {} } = {}) {
  const rng = new Rng(seed);
  const model = buildModel(rt, rng);
  const params = parameters(model);
  const adam = new Adam(params, { lr });
  const test = toyBatch(256, new Rng(seed + 1000));
  const accuracyBefore = await accuracy(model, rt, test);
  const losses = [];
  for (let step = 0; step < steps; step++) {
    const { x: xs, labels } = toyBatch(batch, rng);
    const x = Tensor.fromArray(rt, xs, [batch, 1, SIZE, SIZE], 'x');
    const targets = rt.upload(labels, 'targets');
    adam.zeroGrad();
    const tape = new Tape();
    const logits = forward(model, x, tape);
    const { logp, loss } = logSoftmaxNllLoss(logits, targets, tape);
    logits.release();
    logp.release();
    tape.backward(loss);
    adam.update();
    losses.push((await loss.read())[0]);
    [x, loss].forEach((t) => t.release());
    rt.release(targets);
    if (step % 10 === 9) log(`step ${step + 1}: loss ${losses[step].toFixed(4)}`);
  }
  const accuracyAfter = await accuracy(model, rt, test);
  adam.zeroGrad();
  adam.destroy();
  params.forEach((p) => p.release());
  return { losses, accuracyBefore, accuracyAfter };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rt = await createNodeRuntime();
  const r = await trainToyCnn({ rt, log: console.log });
  console.log(`held-out accuracy: ${(100 * r.accuracyBefore).toFixed(1)}% before training, ${(100 * r.accuracyAfter).toFixed(1)}% after`);
  rt.destroy();
}
