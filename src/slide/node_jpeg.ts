/**
 * The Node JPEG decoder of the pure-JavaScript reader: sharp (libvips over libjpeg-turbo, with its
 * default integer IDCT and fancy chroma upsampling, as OpenSlide decodes), on libuv's thread pool,
 * so many tiles decode at once on every core.
 */
import sharp from 'sharp';
import type { JpegDecoder } from './jpeg.ts';

export const sharpJpegDecoder: JpegDecoder = async (jpeg) => {
  const { data, info } = await sharp(jpeg, { failOn: 'error' }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`JPEG tile decoded to ${info.channels} channels, expected 3`);
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
};
