/**
 * Colour-only baselines: classifiers that see nothing but each image's per-channel RGB mean and std.
 * A model that learned tissue must beat them clearly on the same split (tools/science.ts,
 * tools/cross-validate.ts).
 */
import sharp from 'sharp';
import { channelStats, type ChannelStats } from '../src/nn/colour_normalise.ts';

/** Each image's per-channel RGB statistics, as the network's normalisation measures them (src/nn/colour_normalise.ts). */
export type ColourStats = ChannelStats;

export async function colourStats(path: string): Promise<ColourStats> {
  const { data } = await sharp(path).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return channelStats(new Uint8Array(data.buffer, data.byteOffset, data.length));
}

export type Features = (s: ColourStats) => number[];
export const MEAN_RGB: Features = (s) => s.mean;
export const MEAN_STD_RGB: Features = (s) => [...s.mean, ...s.std];

/** Z-scores features with the training set's per-feature mean and std. */
function zScorer(train: number[][]): (f: number[]) => number[] {
  const d = (train[0] as number[]).length;
  const mu = Array.from({ length: d }, (_, j) => train.reduce((a, f) => a + (f[j] as number), 0) / train.length);
  const sd = Array.from({ length: d }, (_, j) => Math.sqrt(train.reduce((a, f) => a + ((f[j] as number) - (mu[j] as number)) ** 2, 0) / train.length) || 1);
  return (f) => f.map((v, j) => (v - (mu[j] as number)) / (sd[j] as number));
}

const distance = (a: number[], b: number[]) => a.reduce((s, v, j) => s + (v - (b[j] as number)) ** 2, 0);

/** Predicted class of each test image by nearest centroid (k = 0) or k-NN on `features` of the train and test statistics. */
export function colourBaselinePredictions(train: readonly LabelledStats[], test: readonly LabelledStats[], features: Features, classes: number, k: number): number[] {
  const z = zScorer(train.map((t) => features(t.stats)));
  const trainZ = train.map((t) => ({ f: z(features(t.stats)), label: t.label }));
  const centroids = Array.from({ length: classes }, (_, c) => {
    const members = trainZ.filter((t) => t.label === c);
    return members.length ? members[0]!.f.map((_, j) => members.reduce((a, m) => a + (m.f[j] as number), 0) / members.length) : null;
  });
  return test.map((t) => {
    const f = z(features(t.stats));
    let predicted = -1;
    if (k === 0) {
      let best = Infinity;
      centroids.forEach((c, label) => {
        if (c && distance(f, c) < best) [best, predicted] = [distance(f, c), label];
      });
    } else {
      const nearest = [...trainZ].sort((a, b) => distance(f, a.f) - distance(f, b.f)).slice(0, k);
      const votes = new Array(classes).fill(0);
      nearest.forEach((n) => votes[n.label]++);
      predicted = votes.indexOf(Math.max(...votes)); // ties: the lower class index
    }
    return predicted;
  });
}

/** Accuracy of colourBaselinePredictions. */
export function colourBaseline(train: readonly LabelledStats[], test: readonly LabelledStats[], features: Features, classes: number, k: number): number {
  const predicted = colourBaselinePredictions(train, test, features, classes, k);
  return predicted.filter((p, i) => p === test[i]!.label).length / test.length;
}

export interface LabelledStats {
  stats: ColourStats;
  label: number;
}

/** The three baselines of the README: nearest centroid on mean RGB and on mean+std RGB, 5-NN on mean+std (features z-scored on train). */
export const COLOUR_BASELINES: readonly { name: string; features: Features; k: number }[] = [
  { name: 'nearest centroid, mean RGB', features: MEAN_RGB, k: 0 },
  { name: 'nearest centroid, mean+std RGB', features: MEAN_STD_RGB, k: 0 },
  { name: '5-NN, mean+std RGB', features: MEAN_STD_RGB, k: 5 },
];
