/**
 * Shape of a 2-D convolution (PyTorch Conv2d semantics: NCHW input, OIHW weight, square stride and
 * zero padding, no dilation, no groups) and the output-size formula.
 */

export interface Conv2dShape {
  /** Batch. */
  n: number;
  cIn: number;
  h: number;
  w: number;
  cOut: number;
  kh: number;
  kw: number;
  stride: number;
  pad: number;
}

/** Output height and width: floor((in + 2·pad − k) / stride) + 1, as PyTorch. */
export function conv2dOutputSize(s: Conv2dShape): { ho: number; wo: number } {
  const ho = Math.floor((s.h + 2 * s.pad - s.kh) / s.stride) + 1;
  const wo = Math.floor((s.w + 2 * s.pad - s.kw) / s.stride) + 1;
  return { ho, wo };
}

/** Throws a message naming the field when the shape cannot be a convolution. */
export function validateConv2dShape(s: Conv2dShape): void {
  for (const key of ['n', 'cIn', 'h', 'w', 'cOut', 'kh', 'kw', 'stride'] as const) {
    if (!Number.isInteger(s[key]) || s[key] < 1) throw new RangeError(`conv2d: ${key} must be a positive integer, got ${s[key]}`);
  }
  if (!Number.isInteger(s.pad) || s.pad < 0) throw new RangeError(`conv2d: pad must be a non-negative integer, got ${s.pad}`);
  const { ho, wo } = conv2dOutputSize(s);
  if (ho < 1 || wo < 1) throw new RangeError(`conv2d: a ${s.kh}×${s.kw} kernel does not fit a ${s.h}×${s.w} input with pad ${s.pad}`);
}

/** Multiply-adds ×2 of one direction (forward, dx or dW): 2·N·Ho·Wo·Cout·Cin·Kh·Kw. */
export function conv2dFlops(s: Conv2dShape): number {
  const { ho, wo } = conv2dOutputSize(s);
  return 2 * s.n * ho * wo * s.cOut * s.cIn * s.kh * s.kw;
}
