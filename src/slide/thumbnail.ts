/**
 * A slide's thumbnail: the coarsest level at least `maxSide` pixels on its longer side, read whole
 * and shrunk by area averaging (each output pixel the mean of the source pixels it covers, with
 * fractional edge weights) to fit `maxSide`. Pure JavaScript: runs in browsers too.
 */
import type { RgbImage, Slide } from './slide.ts';

/** The thumbnail of `slide`, longer side `maxSide` (or the whole slide when it is smaller). */
export async function slideThumbnail(slide: Slide, maxSide = 1024): Promise<RgbImage> {
  const { levels, width: w0, height: h0 } = slide.info;
  let level = 0;
  for (let l = levels.length - 1; l >= 0; l--) {
    if (Math.max(levels[l]!.width, levels[l]!.height) >= maxSide) {
      level = l;
      break;
    }
  }
  const { width, height } = levels[level]!;
  const image = await slide.readRegion(level, 0, 0, width, height);
  const scale = Math.min(1, maxSide / Math.max(w0, h0));
  const tw = Math.max(1, Math.round(w0 * scale));
  const th = Math.max(1, Math.round(h0 * scale));
  return tw === width && th === height ? image : resizeArea(image, tw, th);
}

/** Area-average resize (shrinking; enlarging falls back to nearest neighbour per covered pixel). */
export function resizeArea(image: RgbImage, width: number, height: number): RgbImage {
  const sx = image.width / width, sy = image.height / height;
  const out = new Uint8Array(width * height * 3);
  const acc = new Float64Array(width * 3);
  for (let y = 0; y < height; y++) {
    acc.fill(0);
    const y0 = y * sy, y1 = (y + 1) * sy;
    for (let py = Math.floor(y0); py < Math.min(image.height, Math.ceil(y1)); py++) {
      const wy = Math.min(py + 1, y1) - Math.max(py, y0);
      const row = py * image.width * 3;
      for (let x = 0; x < width; x++) {
        const x0 = x * sx, x1 = (x + 1) * sx;
        for (let px = Math.floor(x0); px < Math.min(image.width, Math.ceil(x1)); px++) {
          const w = wy * (Math.min(px + 1, x1) - Math.max(px, x0));
          const i = row + px * 3;
          acc[x * 3] += w * image.data[i]!;
          acc[x * 3 + 1] += w * image.data[i + 1]!;
          acc[x * 3 + 2] += w * image.data[i + 2]!;
        }
      }
    }
    const area = sx * sy;
    for (let k = 0; k < width * 3; k++) out[y * width * 3 + k] = Math.round(acc[k]! / area);
  }
  return { width, height, data: out };
}
