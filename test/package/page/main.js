// A page built by Vite against the INSTALLED lungpath package (test/package/package.test.ts): the
// root entry under the browser condition, plus lungpath/kernels and lungpath/nn. It classifies
// raw RGB pixels with the model in ./model and checks one launcher against its CPU reference.
import { checkpointLevel, classifyImage, createBrowserRuntime, describeAdapter, loadModel } from 'lungpath';
import { reluForward, reluForwardRef } from 'lungpath/kernels';
import { Tensor } from 'lungpath/nn';

async function bytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

async function run() {
  const rt = await createBrowserRuntime();
  const x = new Float32Array([-2, -0.5, 0, 0.25, 3, -1, 7, -8, 1.5]);
  const t = Tensor.fromArray(rt, x, [x.length], 'x');
  const relu = Array.from(await rt.readF32(reluForward(rt, t.buffer, x.length), x.length));
  const [level1, level2, rgb] = await Promise.all([bytes('./model/level1.safetensors'), bytes('./model/level2.safetensors'), bytes('./example.rgb')]);
  const model = await loadModel(rt, level1, level2);
  const prediction = await classifyImage(rt, model.level1, model.level2, model.config, rgb, { file: 'example.png' });
  return { adapter: describeAdapter(rt.adapter), relu, reluRef: Array.from(reluForwardRef(x)), level: checkpointLevel(level1), prediction };
}

run().then(
  (result) => {
    window.packageCheck = result;
    document.body.dataset.state = 'done';
  },
  (e) => {
    document.getElementById('out').textContent = String(e?.stack ?? e);
    document.body.dataset.state = 'error';
  },
);
