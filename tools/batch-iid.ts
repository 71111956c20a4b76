/**
 * How close Level-1 batches are to iid, before (the original's windows of 8 images) and after (a
 * pool sized by the default memory budget): distinct images per batch and the largest share of one
 * image over any 50 consecutive batches. CPU only; computed from the patch plans, no pixel read.
 *
 *   npx tsx tools/batch-iid.ts [--images N] [--image-size S] [--patch P] [--stride T] [--batch-size B] [--pool-images K]
 *
 * Defaults: the LC25000 dev set's 771 training images at 224 px with the tiny/tile patch 64/32, batch 16.
 */
import { parseArgs } from 'node:util';
import { patchesPerRow } from '../src/nn/config.ts';
import { DEFAULT_POOL_BYTES, planMetrics, poolImagesFor, poolPlan, windowPlan } from '../src/train/patch_plan.ts';

const { values } = parseArgs({ options: { images: { type: 'string' }, 'image-size': { type: 'string' }, patch: { type: 'string' }, stride: { type: 'string' }, 'batch-size': { type: 'string' }, 'pool-images': { type: 'string' } } });
const images = Number(values.images ?? 771);
const side = Number(values['image-size'] ?? 224);
const patch = Number(values.patch ?? 64);
const stride = Number(values.stride ?? 32);
const batch = Number(values['batch-size'] ?? 16);
const pool = Number(values['pool-images'] ?? poolImagesFor(DEFAULT_POOL_BYTES, side));
const perImage = patchesPerRow(side, patch, stride) ** 2;
const o = { seed: 0, epoch: 0, augment: false };
console.log(`${images} images of ${side}², ${perImage} patches each (${patch} px at stride ${stride}), batch ${batch}`);
for (const [name, plan] of [
  ['windows of 8 images (before)', windowPlan(images, perImage, 8, o)],
  [`pool of ${Math.min(pool, images)} images (after)`, poolPlan(images, perImage, pool, o)],
] as const) {
  const m = planMetrics(plan, batch);
  console.log(`${name}: distinct images per batch mean ${m.meanDistinctImages.toFixed(2)} (min ${m.minDistinctImages}); largest share of one image over any ${m.span} consecutive batches ${(100 * m.maxImageShare).toFixed(2)}%`);
}
