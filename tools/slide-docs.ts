/**
 * The README's whole-slide pictures: `npx tsx tools/slide-docs.ts` writes two synthetic slides
 * with QuPath GeoJSON (test/slide/make_slide.ts), runs `lungpath tiles` on them, and saves
 *   docs/slide-tissue-mask.png — the tissue mask over the thumbnail, as `lungpath tiles` writes it
 *                                to DATASET/masks/ (green tint and outline: tissue);
 *   docs/slide-tiles.png       — a contact sheet of cut tiles, one row per class.
 * The slides and the dataset are written to a temporary folder and removed.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp, { type OverlayOptions } from 'sharp';
import { qupathGeoJson, standardRegions, writeTestSlide } from '../test/slide/make_slide.ts';

const root = join(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'lungpath-slide-docs-'));
try {
  mkdirSync(join(dir, 'annotations'));
  const slides = ['case-01.svs', 'case-02.svs', 'case-03.svs'];
  for (const [i, name] of slides.entries()) {
    await writeTestSlide(join(dir, name), { width: 4096, height: 4096, mpp: 0.5, format: 'svs', regions: standardRegions(), seed: 20 + i });
    writeFileSync(join(dir, 'annotations', name.replace('.svs', '.geojson')), qupathGeoJson(standardRegions()));
  }
  const command = ['tiles', ...slides.map((s) => join(dir, s)), '--out', join(dir, 'dataset'), '--annotations', join(dir, 'annotations'), '--size', '256', '--mpp', '1', '--min-inside', '0.75'];
  console.log(`lungpath ${command.join(' ')}`);
  execFileSync(process.execPath, [join(root, 'bin', 'lungpath.js'), ...command], { stdio: 'inherit' });
  copyFileSync(join(dir, 'dataset', 'masks', 'case-01.png'), join(root, 'docs', 'slide-tissue-mask.png'));
  // Contact sheet: 6 tiles per class from the train split, 128 px each, 4 px gaps.
  const cell = 128, gap = 4, perRow = 6;
  const split = readdirSync(join(dir, 'dataset')).find((d) => d === 'train')!;
  const classes = readdirSync(join(dir, 'dataset', split)).sort();
  const overlays: OverlayOptions[] = [];
  let widest = 1;
  for (const [row, cls] of classes.entries()) {
    const files = readdirSync(join(dir, 'dataset', split, cls)).sort();
    const pick = Array.from({ length: Math.min(perRow, files.length) }, (_, k) => files[Math.floor((k * files.length) / perRow)]!);
    widest = Math.max(widest, pick.length);
    for (const [col, file] of pick.entries()) {
      overlays.push({ input: await sharp(join(dir, 'dataset', split, cls, file)).resize(cell, cell).png().toBuffer(), left: gap + col * (cell + gap) + 60, top: gap + row * (cell + gap) });
    }
    const label = Buffer.from(`<svg width="60" height="${cell}"><text x="4" y="${cell / 2 + 6}" font-family="sans-serif" font-size="16">${cls}</text></svg>`);
    overlays.push({ input: label, left: 0, top: gap + row * (cell + gap) });
  }
  await sharp({ create: { width: 60 + gap + widest * (cell + gap), height: gap + classes.length * (cell + gap), channels: 3, background: { r: 255, g: 255, b: 255 } } })
    .composite(overlays)
    .png()
    .toFile(join(root, 'docs', 'slide-tiles.png'));
  console.log('wrote docs/slide-tissue-mask.png and docs/slide-tiles.png');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
