/**
 * The target of a run's per-image colour normalisation (src/nn/colour_normalise.ts): the average,
 * over the training images, of each image's per-channel RGB mean and std — the same statistic the
 * README's colour-normalised test copy is matched to. Measured once when a run starts and saved in
 * its config.json, so evaluation, prediction and the demo use the very same numbers.
 */
import { averageChannelStats, channelStats, colourNormaliseMethod, type ChannelStats } from '../nn/colour_normalise.ts';
import type { ModelConfig } from '../nn/config.ts';
import type { DatasetImage } from './dataset.ts';
import { decodeImage, type MismatchPolicy } from './decode.ts';

/** At most this many training images (evenly spaced in the split's order) are measured. */
export const COLOUR_TARGET_IMAGES = 1024;

/** Channel statistics averaged over up to COLOUR_TARGET_IMAGES of `images`, decoded as training decodes them. */
export async function trainingColourTarget(images: readonly DatasetImage[], config: ModelConfig, o: { onMismatch: MismatchPolicy; warn?: (m: string) => void }): Promise<ChannelStats> {
  if (images.length === 0) throw new Error('colour normalisation: the training split has no images to measure the target from');
  const count = Math.min(images.length, COLOUR_TARGET_IMAGES);
  const stats: ChannelStats[] = [];
  for (let k = 0; k < count; k++) {
    const image = images[Math.floor((k * images.length) / count)] as DatasetImage;
    const { rgb } = await decodeImage(image.path, { imageSize: config.imageSize, onMismatch: o.onMismatch, warn: o.warn, patchSize: config.patch.size });
    stats.push(channelStats(rgb));
  }
  const round = (v: number[]) => v.map((x) => Math.round(x * 1e4) / 1e4) as [number, number, number];
  const avg = averageChannelStats(stats);
  return { mean: round(avg.mean), std: round(avg.std) };
}

/**
 * `config` with its colour-normalisation target filled in from the training images when it asks
 * for normalisation and has none yet; otherwise `config` itself.
 */
export async function withColourTarget(config: ModelConfig, images: readonly DatasetImage[], o: { onMismatch: MismatchPolicy; warn?: (m: string) => void; log?: (m: string) => void }): Promise<ModelConfig> {
  const method = colourNormaliseMethod(config);
  if (method === 'none' || config.colourNormalise?.target) return config;
  const target = await trainingColourTarget(images, config, o);
  o.log?.(`colour normalisation '${method}': target RGB mean ${target.mean.map((v) => v.toFixed(1)).join(', ')}, std ${target.std.map((v) => v.toFixed(1)).join(', ')} (average of ${Math.min(images.length, COLOUR_TARGET_IMAGES)} training images)`);
  return { ...config, colourNormalise: { method, target } };
}
