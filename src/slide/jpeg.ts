/**
 * JPEG tiles of TIFF files: the shared JPEGTables (TIFF tech note 2) joined to each tile's
 * abbreviated stream, and the decoder interface. The default decoder is pure JavaScript (jpeg-js,
 * the pdf.js decoder: browser-safe, one thread); Node passes sharp's libjpeg-turbo instead
 * (node_jpeg.ts), the decoder OpenSlide uses, which gives the same pixels as OpenSlide.
 */
import { decode } from 'jpeg-js';

/**
 * Decodes one complete JPEG stream to RGB8. `ycbcr`: the TIFF says the stream holds YCbCr
 * (PhotometricInterpretation 6); otherwise RGB. libtiff writes neither a JFIF nor an Adobe marker, so
 * the TIFF tag is what says which.
 */
export type JpegDecoder = (jpeg: Uint8Array, ycbcr: boolean) => Promise<{ width: number; height: number; data: Uint8Array }>;

/**
 * A complete JPEG stream from JPEGTables (SOI, tables, EOI) and an abbreviated tile stream
 * (SOI, frame, scan, EOI): the tables go between the tile's SOI and the rest.
 */
export function joinJpegTables(tables: Uint8Array | undefined, tile: Uint8Array): Uint8Array {
  if (!tables || tables.length < 4) return tile;
  const out = new Uint8Array(tables.length - 2 + tile.length - 2);
  out.set(tables.subarray(0, tables.length - 2), 0); // SOI + tables, without EOI
  out.set(tile.subarray(2), tables.length - 2); // the tile without its SOI
  return out;
}

/** jpeg-js, pure JavaScript; refuses streams over `maxMegapixels` (a 4096² tile is 16.8). */
export function jsJpegDecoder(maxMegapixels = 17): JpegDecoder {
  return async (jpeg, ycbcr) => {
    const image = decode(jpeg, { useTArray: true, formatAsRGBA: false, colorTransform: ycbcr, maxResolutionInMP: maxMegapixels, maxMemoryUsageInMB: 1024 });
    return { width: image.width, height: image.height, data: image.data };
  };
}
