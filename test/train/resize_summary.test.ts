/** The resize notice of train, evaluate and predict: one line with the count and the sizes, not one per image. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeImage } from '../../src/train/decode.ts';
import { collectResizeNotes, resizeSummary, withoutResizeNotes } from '../../src/train/resize_notes.ts';

describe('resizeSummary', () => {
  it('counts the images per size, most common first', () => {
    const warnings = [
      'a.jpeg: image is 224×224, the model takes 256×256; it will be resized',
      'b.jpeg: image is 300×200, the model takes 256×256; it will be resized',
      'c.jpeg: image is 224×224, the model takes 256×256; it will be resized',
    ];
    expect(resizeSummary(warnings, 256)).toMatch(/^3 images are not 256×256 \(2 of 224×224, 1 of 300×200\); they are resized to 256×256/);
  });
  it("counts decodeImage's own notes once per image and passes every other warning on", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lungpath-resize-'));
    try {
      const paths: string[] = [];
      for (const [name, w, h] of [['a.png', 40, 40], ['b.png', 40, 40], ['c.png', 48, 32], ['d.png', 32, 32]] as const) {
        paths.push(join(dir, name));
        await sharp({ create: { width: w, height: h, channels: 3, background: { r: 200, g: 100, b: 150 } } }).png().toFile(join(dir, name));
      }
      const passed: string[] = [];
      const collected = collectResizeNotes((m) => passed.push(m));
      for (const path of [...paths, paths[0] as string]) await decodeImage(path, { imageSize: 32, onMismatch: 'resize', warn: collected.warn });
      collected.warn('something else');
      expect(passed).toEqual(['something else']);
      expect(collected.summary(32, 'hint')).toBe('3 images are not 32×32 (2 of 40×40, 1 of 48×32); they are resized to 32×32 whenever they are loaded (hint)');
      expect(collectResizeNotes(() => {}).summary(32, 'hint')).toBeNull();

      const kept: string[] = [];
      const filtered = withoutResizeNotes((m) => kept.push(m));
      await decodeImage(paths[2] as string, { imageSize: 32, onMismatch: 'resize', warn: filtered });
      filtered(`${paths[2]}: image is 48×32, something other than a resize`);
      expect(kept).toEqual([`${paths[2]}: image is 48×32, something other than a resize`]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
