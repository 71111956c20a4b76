// A page built by Vite against the INSTALLED lungpath package (test/package/package.test.ts): the
// root entry under the browser condition, plus lungpath/kernels, lungpath/nn and lungpath/slide. It
// classifies raw RGB pixels with the model in ./model, checks one launcher against its CPU
// reference, and reads a region of ./slide.tiff with the JavaScript slide reader (jpeg-js).
import { checkpointLevel, classifyImage, createBrowserRuntime, describeAdapter, loadModel } from 'lungpath';
import { reluForward, reluForwardRef } from 'lungpath/kernels';
import { Tensor } from 'lungpath/nn';
import { bytesSource, jsJpegDecoder, openJsSlide } from 'lungpath/slide';

async function bytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

/** Level 0, (200, 150), 300×200 of the test slide: its size and a digest of its bytes, as Node computes them. */
async function readSlide() {
  const slide = await openJsSlide(bytesSource('slide.tiff', await bytes('./slide.tiff')), { decoder: jsJpegDecoder() });
  const region = await slide.readRegion(0, 200, 150, 300, 200);
  slide.close();
  let digest = 0;
  for (const v of region.data) digest = (Math.imul(digest, 31) + v) >>> 0;
  return { levels: slide.info.levels.length, width: region.width, height: region.height, digest };
}

async function run() {
  const rt = await createBrowserRuntime();
  const x = new Float32Array([-2, -0.5, 0, 0.25, 3, -1, 7, -8, 1.5]);
  const t = Tensor.fromArray(rt, x, [x.length], 'x');
  const relu = Array.from(await rt.readF32(reluForward(rt, t.buffer, x.length), x.length));
  const [level1, level2, rgb] = await Promise.all([bytes('./model/level1.safetensors'), bytes('./model/level2.safetensors'), bytes('./example.rgb')]);
  const model = await loadModel(rt, level1, level2);
  const prediction = await classifyImage(rt, model.level1, model.level2, model.config, rgb, { file: 'example.png' });
  return { adapter: describeAdapter(rt.adapter), relu, reluRef: Array.from(reluForwardRef(x)), level: checkpointLevel(level1), prediction, slide: await readSlide() };
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
