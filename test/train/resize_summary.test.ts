/** The resize notice of `lungpath train`: one line with the count and the sizes, not one per image. */
import { describe, expect, it } from 'vitest';
import { resizeSummary } from '../../src/train/commands/train.ts';

describe('resizeSummary', () => {
  it('counts the images per size, most common first', () => {
    const warnings = [
      'a.jpeg: image is 224×224, the model takes 256×256; it will be resized',
      'b.jpeg: image is 300×200, the model takes 256×256; it will be resized',
      'c.jpeg: image is 224×224, the model takes 256×256; it will be resized',
    ];
    expect(resizeSummary(warnings, 256)).toMatch(/^3 images are not 256×256 \(2 of 224×224, 1 of 300×200\); they are resized to 256×256/);
  });
});
