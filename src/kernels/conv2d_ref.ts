/**
 * CPU references for conv2d (the spec the WGSL kernels are tested against): plain loops, float64
 * accumulation. y[n,o,i,j] = b[o] + Σ_c Σ_ky Σ_kx w[o,c,ky,kx] · x[n,c,i·s+ky−p, j·s+kx−p] (zero outside).
 * Backward: dx scatters dy through the same index map, dW correlates x with dy, db sums dy.
 */
import { conv2dOutputSize, type Conv2dShape } from './conv2d_shape.ts';

type Visit = (xIndex: number, wIndex: number, yIndex: number) => void;

/** Calls `visit` once per (input, weight, output) triple that the convolution multiplies. */
function forEachTap(s: Conv2dShape, visit: Visit): void {
  const { ho, wo } = conv2dOutputSize(s);
  for (let n = 0; n < s.n; n++) {
    for (let o = 0; o < s.cOut; o++) {
      for (let i = 0; i < ho; i++) {
        for (let j = 0; j < wo; j++) {
          const yIndex = ((n * s.cOut + o) * ho + i) * wo + j;
          for (let c = 0; c < s.cIn; c++) {
            for (let ky = 0; ky < s.kh; ky++) {
              const y = i * s.stride + ky - s.pad;
              if (y < 0 || y >= s.h) continue;
              for (let kx = 0; kx < s.kw; kx++) {
                const x = j * s.stride + kx - s.pad;
                if (x < 0 || x >= s.w) continue;
                visit(((n * s.cIn + c) * s.h + y) * s.w + x, ((o * s.cIn + c) * s.kh + ky) * s.kw + kx, yIndex);
              }
            }
          }
        }
      }
    }
  }
}

/** y = conv2d(x, w) + b; b may be null (no bias). */
export function conv2dForwardRef(x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number> | null, s: Conv2dShape): Float64Array {
  const { ho, wo } = conv2dOutputSize(s);
  const y = new Float64Array(s.n * s.cOut * ho * wo);
  if (b) {
    for (let i = 0; i < y.length; i++) y[i] = b[Math.floor(i / (ho * wo)) % s.cOut] as number;
  }
  forEachTap(s, (xi, wi, yi) => {
    y[yi] = (y[yi] as number) + (x[xi] as number) * (w[wi] as number);
  });
  return y;
}

/** dx = ∂L/∂x given dy = ∂L/∂y. */
export function conv2dBackwardDataRef(dy: ArrayLike<number>, w: ArrayLike<number>, s: Conv2dShape): Float64Array {
  const dx = new Float64Array(s.n * s.cIn * s.h * s.w);
  forEachTap(s, (xi, wi, yi) => {
    dx[xi] = (dx[xi] as number) + (dy[yi] as number) * (w[wi] as number);
  });
  return dx;
}

/** dW = ∂L/∂W given the input x and dy. */
export function conv2dBackwardWeightRef(x: ArrayLike<number>, dy: ArrayLike<number>, s: Conv2dShape): Float64Array {
  const dw = new Float64Array(s.cOut * s.cIn * s.kh * s.kw);
  forEachTap(s, (xi, wi, yi) => {
    dw[wi] = (dw[wi] as number) + (dy[yi] as number) * (x[xi] as number);
  });
  return dw;
}

/** db = Σ over batch and pixels of dy, per output channel. */
export function conv2dBackwardBiasRef(dy: ArrayLike<number>, s: Conv2dShape): Float64Array {
  const { ho, wo } = conv2dOutputSize(s);
  const db = new Float64Array(s.cOut);
  for (let i = 0; i < dy.length; i++) {
    const o = Math.floor(i / (ho * wo)) % s.cOut;
    db[o] = (db[o] as number) + (dy[i] as number);
  }
  return db;
}
