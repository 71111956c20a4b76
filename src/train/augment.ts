/**
 * What the Level-1 loader draws for each patch's augmentation: a dihedral variant and the
 * original's colour factors (`drawAugmentation`), and the HED stain parameters (`drawHed` in
 * kernels/augment_hed.ts). The GPU launchers and float64 references live in src/kernels/
 * (augment_colour.ts, augment_hed.ts); they are re-exported here for existing callers.
 */
import type { Rng } from '../nn/random.ts';

export { augmentColour, augmentColourRef } from '../kernels/augment_colour.ts';
export { augmentHed, augmentHedRef, drawHed } from '../kernels/augment_hed.ts';

/** One patch's augmentation: a dihedral variant (see cropPatches) and three enhance factors. */
export interface Augmentation {
  variant: number;
  colour: number;
  contrast: number;
  brightness: number;
}

/** Draws a variant in 0..7 and colour, contrast and brightness factors uniform in [1, 2), in that order. */
export function drawAugmentation(rng: Rng): Augmentation {
  const variant = rng.below(8);
  const colour = 1 + rng.next();
  const contrast = 1 + rng.next();
  const brightness = 1 + rng.next();
  return { variant, colour, contrast, brightness };
}

