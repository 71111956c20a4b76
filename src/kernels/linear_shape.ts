/**
 * The shape of a linear layer applied to a batch, beside conv2d_shape.ts: what the kernel-choice
 * table (kernel_choices.ts, held by the runtime) keys on, without importing the launchers.
 */

/** Shape of a linear layer applied to a batch: x[n, inFeatures] → y[n, outFeatures]. */
export interface LinearShape {
  n: number;
  inFeatures: number;
  outFeatures: number;
}
