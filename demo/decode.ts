/**
 * Image files → RGB8 in the browser, matching src/train/decode.ts (sharp) on the images the CLI
 * sees: decoded without colour management (`colorSpaceConversion: 'none'`) and without
 * premultiplication, EXIF orientation applied, alpha flattened onto white, then the alpha byte
 * dropped. Images of another size are resized to the model's square imageSize in a canvas (high
 * quality smoothing; sharp resizes with lanczos3, so resized pixels differ slightly from the CLI's).
 */

/** A problem with the user's file; the message is shown as is. */
export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InputError';
  }
}

export interface BrowserImage {
  /** imageSize² RGB8, interleaved, row-major. */
  rgb: Uint8Array;
  /** Size of the file's image before any resize. */
  width: number;
  height: number;
  resized: boolean;
}

/** Largest image decoded (width·height), as the CLI's decompression-bomb guard. */
export const MAX_PIXELS = 20000 * 20000;

/**
 * Decodes `file` to imageSize² RGB8. Throws an InputError for a file that is not a decodable image,
 * an image smaller than one patch, or one over MAX_PIXELS.
 */
export async function decodeImageFile(file: Blob, name: string, imageSize: number, patchSize: number): Promise<BrowserImage> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(file, { colorSpaceConversion: 'none', premultiplyAlpha: 'none', imageOrientation: 'from-image' });
  } catch {
    throw new InputError(`${name} is not an image this browser can read (or the file is damaged). Choose a PNG, JPEG or WebP image.`);
  }
  try {
    const { width, height } = bitmap;
    if (width * height > MAX_PIXELS) throw new InputError(`${name} is ${width}×${height} pixels, too large to process here (limit ${MAX_PIXELS.toLocaleString('en')} pixels).`);
    if (width < patchSize || height < patchSize) {
      throw new InputError(`${name} is ${width}×${height} pixels, smaller than one ${patchSize}×${patchSize} patch of this model. Use a larger image.`);
    }
    const canvas = document.createElement('canvas');
    canvas.width = imageSize;
    canvas.height = imageSize;
    const ctx = canvas.getContext('2d', { willReadFrequently: true, colorSpace: 'srgb' });
    if (!ctx) throw new InputError('this browser gave no 2D canvas to decode the image');
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, imageSize, imageSize);
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(bitmap, 0, 0, imageSize, imageSize);
    const rgba = ctx.getImageData(0, 0, imageSize, imageSize, { colorSpace: 'srgb' }).data;
    const rgb = new Uint8Array(imageSize * imageSize * 3);
    for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
      rgb[j] = rgba[i] as number;
      rgb[j + 1] = rgba[i + 1] as number;
      rgb[j + 2] = rgba[i + 2] as number;
    }
    return { rgb, width, height, resized: width !== imageSize || height !== imageSize };
  } finally {
    bitmap.close();
  }
}
