/**
 * Image decoding: every format and pixel layout decodes to the RGB8 of the plain image (within JPEG
 * tolerance for JPEG), wrong sizes are resized with a warning or refused, and too-small images,
 * decompression bombs and damaged files are errors naming the file.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp, { type Sharp } from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { checkImageFitsPatch, decodeImage, ImageError, inspectImage, isImageFile } from '../../src/train/decode.ts';
import { expectClose } from '../helpers/check.ts';

const dir = mkdtempSync(join(tmpdir(), 'lungpath-decode-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const S = 32;
/** An asymmetric, mostly smooth RGB8 image (JPEG keeps it within a few levels). */
const plain = new Uint8Array(S * S * 3);
for (let y = 0; y < S; y++) {
  for (let x = 0; x < S; x++) plain.set([10 + 7 * x, 20 + 6 * y, 30 + 2 * x + 3 * y], (y * S + x) * 3);
}
const gray = Uint8Array.from({ length: S * S }, (_, i) => 40 + ((i * 5) % 180));
const alpha = Uint8Array.from({ length: S * S }, (_, i) => (i * 13) % 256);
const rgba = Uint8Array.from({ length: S * S * 4 }, (_, k) => (k % 4 === 3 ? alpha[k >> 2]! : plain[(k >> 2) * 3 + (k % 4)]!));
/** The plain image composited onto white by the alpha channel. */
const onWhite = Uint8Array.from(plain, (v, k) => Math.round((v * alpha[Math.floor(k / 3)]!) / 255 + 255 * (1 - alpha[Math.floor(k / 3)]! / 255)));
const grayRgb = Uint8Array.from({ length: S * S * 3 }, (_, k) => gray[Math.floor(k / 3)]!);

const raw = (channels: 1 | 3 | 4) => ({ raw: { width: S, height: S, channels } });
const jpeg = { quality: 95, chromaSubsampling: '4:4:4' } as const;

async function write(name: string, image: Sharp): Promise<string> {
  const path = join(dir, name);
  writeFileSync(path, await image.toBuffer());
  return path;
}

const decode = (path: string, imageSize = S) => decodeImage(path, { imageSize, onMismatch: 'refuse' });

describe('decodeImage', () => {
  it.each<[string, () => Sharp, Uint8Array, number]>([
    ['plain.png', () => sharp(plain, raw(3)).png(), plain, 0],
    ['plain.JPG', () => sharp(plain, raw(3)).jpeg(jpeg), plain, 16],
    ['plain.tif', () => sharp(plain, raw(3)).tiff({ compression: 'lzw' }), plain, 0],
    ['plain.webp', () => sharp(plain, raw(3)).webp({ lossless: true }), plain, 0],
    ['gray.png', () => sharp(gray, raw(1)).png(), grayRgb, 0],
    ['gray16.png', () => sharp(Uint16Array.from(gray, (v) => v * 257), raw(1)).toColourspace('grey16').png(), grayRgb, 0],
    ['rgba.png', () => sharp(rgba, raw(4)).png(), onWhite, 1],
    ['rgb16.png', () => sharp(Uint16Array.from(plain, (v) => v * 257), raw(3)).toColourspace('rgb16').png(), plain, 0],
    ['rgba16.png', () => sharp(Uint16Array.from(rgba, (v) => v * 257), raw(4)).toColourspace('rgb16').png(), onWhite, 1],
    // Stored turned a quarter counter-clockwise; EXIF orientation 6 says "turn 90° clockwise to show".
    ['exif-rotated.jpeg', () => sharp(plain, raw(3)).rotate(270).jpeg(jpeg).withMetadata({ orientation: 6 }), plain, 16],
  ])('%s decodes to the plain RGB8', async (name, image, expected, atol) => {
    const decoded = await decode(await write(name, image()));
    expect([decoded.width, decoded.height, decoded.rgb.length]).toEqual([S, S, S * S * 3]);
    expectClose(decoded.rgb, expected, { atol, rtol: 0 }, name);
    if (atol > 1) expect(decoded.rgb.reduce((acc, v, i) => acc + Math.abs(v - expected[i]!), 0) / expected.length).toBeLessThan(2);
  });

  it('resizes an image of another size with a warning naming the file and both sizes', async () => {
    const path = await write('wide.png', sharp(plain, raw(3)).resize(48, 40).png());
    const warnings: string[] = [];
    const decoded = await decodeImage(path, { imageSize: S, onMismatch: 'resize', warn: (m) => warnings.push(m) });
    expect([decoded.width, decoded.height, decoded.rgb.length]).toEqual([S, S, S * S * 3]);
    expect(warnings).toEqual([`${path}: image is 48×40, resized to 32×32`]);
    await expect(decode(path)).rejects.toThrow(`${path}: image is 48×40, the model takes 32×32 (resizing is turned off)`);
  });

  it('reports the size after EXIF orientation', async () => {
    const path = await write('tall-exif.jpg', sharp(plain, raw(3)).resize(40, 24).jpeg(jpeg).withMetadata({ orientation: 6 }));
    await expect(decode(path)).rejects.toThrow(/image is 24×40/);
  });

  it.each<[string, (path: string) => Promise<unknown>, RegExp]>([
    ['smaller than a patch', (path) => decodeImage(path, { imageSize: S, onMismatch: 'resize', patchSize: 33, warn: () => {} }), /image is 32×32, smaller than one 33×33 patch/],
    ['over the pixel cap', (path) => decodeImage(path, { imageSize: S, onMismatch: 'resize', maxPixels: 1000 }), /32×32 = 1024 pixels, over the limit of 1000 pixels/],
  ])('an image %s is an error naming the file', async (_, call, message) => {
    const path = await write('small.png', sharp(plain, raw(3)).png());
    const error = await call(path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ImageError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message.startsWith(`${path}: `)).toBe(true);
  });

  it('rejects damaged files with an error naming the file', async () => {
    const png = await sharp(plain, raw(3)).png().toBuffer();
    const cases: [string, Uint8Array, RegExp][] = [
      ['truncated.png', png.subarray(0, png.length >> 1), /corrupt or truncated image/],
      ['text.png', new TextEncoder().encode('not an image at all'), /not an image/],
      ['empty.jpg', new Uint8Array(0), /not an image/],
    ];
    for (const [name, bytes, message] of cases) {
      const path = join(dir, name);
      writeFileSync(path, bytes);
      await expect(decode(path), name).rejects.toThrow(message);
      await expect(decode(path), name).rejects.toThrow(path);
    }
    await expect(decode(join(dir, 'missing.png'))).rejects.toThrow(/missing\.png: file does not exist/);
  });
});

describe('inspectImage and helpers', () => {
  it('reads the header and the file size without decoding', async () => {
    const path = await write('header.webp', sharp(plain, raw(3)).resize(40, 36).webp());
    expect(await inspectImage(path)).toEqual({ format: 'webp', width: 40, height: 36, bytes: readFileSync(path).length });
  });

  it('checkImageFitsPatch and isImageFile', () => {
    expect(() => checkImageFitsPatch('a.png', 64, 63, 64)).toThrow('a.png: image is 64×63, smaller than one 64×64 patch');
    expect(() => checkImageFitsPatch('a.png', 64, 64, 64)).not.toThrow();
    expect(['a.PNG', 'b.jpeg', 'c.Tiff', 'd.webp', 'e.tif', 'f.JPG'].every(isImageFile)).toBe(true);
    expect(['notes.txt', 'png', '.DS_Store', 'a.gif', 'a.png.bak'].some(isImageFile)).toBe(false);
  });
});
