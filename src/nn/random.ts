/**
 * Seeded randomness for weights and shuffling: xoshiro128** over 32-bit integers (identical on
 * every JS engine), normals by Box–Muller in float64. The state can be saved and restored, so a
 * resumed run draws the same numbers as an uninterrupted one. `mixSeed` derives every other seed
 * of the project (per image, per epoch, per step, per stream) from the user's one seed.
 */

/**
 * MurmurHash3's 32-bit finaliser (Appleby): a bijection of u32 in which each input bit flips each
 * output bit with probability close to ½ (full avalanche; test/nn/random.test.ts measures it).
 */
export function fmix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Mixes integer words (a seed, a stream tag, an epoch, an index, …) into one u32 seed: the
 * project's one seed mixer. Each word is absorbed as h ← fmix32((h + φ) ^ word) (φ = 0x9e3779b9,
 * splitmix's increment), then the word count, so:
 * - two lists of u32 words of one length that differ in exactly one word never give one seed (every
 *   step is a bijection in h for a fixed word and in the word for a fixed h), so adjacent indices,
 *   epochs or seeds always differ, and order matters (mixSeed(a, b) ≠ mixSeed(b, a) in general);
 * - each output bit depends on every input bit with probability ≈ ½ (fmix32's avalanche).
 * It is not a cryptographic hash; it only has to decorrelate the streams that seed xoshiro128**,
 * whose own splitmix32 seeding spreads any remaining structure. Words are integers; those outside
 * u32 (negative, or up to 2⁵³) fold their high half in, so -1 and 0xffffffff differ.
 *
 * Other hashes in the code are not seed mixers and stay: Rng's splitmix32 expands one seed into
 * its four state words; dropout's lowbias32 is the per-element mask hash the WGSL kernel computes
 * bit for bit; synth/canvas.ts's hash2 is the per-lattice-point value-noise hash of a hot loop.
 */
export function mixSeed(...words: number[]): number {
  let h = 0;
  for (let i = 0; i < words.length; i++) {
    const w = words[i] as number;
    if (!Number.isSafeInteger(w)) throw new RangeError(`mixSeed: word ${i} is ${w}, not a safe integer`);
    const high = Math.floor(w / 4294967296) >>> 0;
    h = fmix32(((h + 0x9e3779b9) ^ w ^ Math.imul(high, 0x85ebca77)) >>> 0);
  }
  return fmix32(h ^ words.length);
}

/** 32-bit FNV-1a of a string's UTF-16 code units: names (class, slide, patient) as mixSeed words. */
export function hashText(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

export class Rng {
  private s: Uint32Array;

  constructor(seed: number | Uint32Array) {
    if (seed instanceof Uint32Array) {
      this.s = Uint32Array.from(seed);
      return;
    }
    // splitmix32 expands one seed into four state words.
    this.s = new Uint32Array(4);
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
    if (this.s.every((w) => w === 0)) this.s[0] = 1;
  }

  /** A uniform u32. */
  nextU32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1] as number, 5), 7), 9) >>> 0;
    const t = (s[1] as number) << 9;
    s[2] = (s[2] as number) ^ (s[0] as number);
    s[3] = (s[3] as number) ^ (s[1] as number);
    s[1] = (s[1] as number) ^ (s[2] as number);
    s[0] = (s[0] as number) ^ (s[3] as number);
    s[2] = (s[2] as number) ^ t;
    s[3] = rotl(s[3] as number, 11);
    return result;
  }

  /** Uniform in [0, 1) with 32 random bits. */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** A standard normal (Box–Muller; one draw uses two uniforms). */
  normal(): number {
    const u1 = 1 - this.next();
    const u2 = this.next();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** An integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Fisher–Yates shuffle in place. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.below(i + 1);
      [items[i], items[j]] = [items[j] as T, items[i] as T];
    }
    return items;
  }

  state(): Uint32Array {
    return Uint32Array.from(this.s);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/**
 * The project's seed streams: the tag each use of mixSeed passes right after the user's seed, so
 * no two uses draw from one stream (test/nn/random.test.ts checks the tags are distinct). A new
 * use gets a new tag here. Library users mixing their own seeds may pick any tags.
 * @internal
 */
export const SEED_STREAM = {
  /** synth.ts: the seed of one synthetic image from (dataset seed, class, index). */
  synthImage: 1,
  /** synth.ts: an image's stain and imaging conditions (class-independent). */
  synthSlide: 2,
  /** synth.ts: an image's morphology painter (with the class). */
  synthPainter: 3,
  /** synth.ts: the extra per-image stain variation. */
  synthStainVariation: 4,
  /** patch_plan.ts: an epoch's image order. */
  patchImageOrder: 5,
  /** patch_plan.ts: the shuffle and augmentation of one window of windowPlan. */
  patchWindow: 6,
  /** patch_plan.ts: poolPlan's draws. */
  patchPoolDraw: 7,
  /** patch_plan.ts: poolPlan's augmentation draws. */
  patchAugment: 8,
  /** patch_plan.ts: the HED stain augmentation draws. */
  patchHed: 9,
  /** bn_recalibrate.ts: the patches that recalibrate BatchNorm statistics. */
  bnRecalibrate: 10,
  /** level1.ts stepSeed: the dropout masks of one training step. */
  dropoutStep: 11,
  /** level2.ts: an epoch's order of Level-2 images. */
  level2Order: 12,
  /** dataset.ts: the split of one class's images of a flat dataset. */
  datasetSplit: 13,
  /** slide/split.ts: the order in which slides and patients are dealt into splits. */
  slideSplit: 14,
  /** level2.ts: which flip/rotation variant of each training image's feature maps an epoch uses. */
  level2Variant: 15,
  /** patch_plan.ts: how far each Level-1 training patch moves off its grid origin (random crops). */
  patchJitter: 16,
  /** train/group_folds.ts: the order in which each class's groups are dealt into cross-validation folds, and each fold's validation groups. */
  groupFolds: 17,
} as const;
