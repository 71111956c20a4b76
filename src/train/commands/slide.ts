/**
 * `lungpath slide info SLIDE... [--json] [--reader auto|openslide|js]`: levels, sizes, microns per
 * pixel, vendor and objective power of each slide. Every slide is tried; the exit status is 1 when
 * any could not be read (each failure named on stderr).
 */
import { openSlide, READER_CHOICES, type ReaderChoice } from '../../slide/open.ts';
import type { SlideInfo } from '../../slide/slide.ts';
import { choiceFlag, parse, UsageError } from './args.ts';

const HELP = `Usage: lungpath slide info SLIDE... [options]

Prints each slide's pyramid levels (size, downsample), microns per pixel, vendor, objective power
and associated images.

Options:
  --json                      one JSON object per slide, in an array
  --reader auto|openslide|js  force a reader (default auto: OpenSlide when installed and it
                              recognises the file, else the JavaScript TIFF/SVS reader)
  -h, --help                  this help`;

/** `lungpath slide <subcommand>`. */
export async function runSlide(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    console.log(HELP);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== 'info') throw new UsageError(`unknown subcommand '${sub}' (lungpath slide info SLIDE...)`);
  const { values, positionals } = parse(rest, { json: { type: 'boolean' }, reader: { type: 'string' } }, true);
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError('give at least one slide file');
  const reader = choiceFlag(values.reader, 'reader', READER_CHOICES, 'auto') as ReaderChoice;
  const infos: SlideInfo[] = [];
  let failed = 0;
  for (const path of positionals) {
    try {
      const slide = await openSlide(path, { reader });
      infos.push(slide.info);
      slide.close();
    } catch (e) {
      failed++;
      console.error(`lungpath slide info: ${(e as Error).message}`);
    }
  }
  if (values.json) console.log(JSON.stringify(infos, null, 2));
  else for (const info of infos) console.log(formatInfo(info));
  return failed > 0 ? 1 : 0;
}

/** A few lines a person reads: the slide, then one line per level. */
export function formatInfo(info: SlideInfo): string {
  const mpp = info.mpp ? `${info.mpp[0].toFixed(4)} × ${info.mpp[1].toFixed(4)} µm/px` : 'unknown µm/px';
  const lines = [
    `${info.path}`,
    `  ${info.width} × ${info.height} px, ${mpp}, vendor ${info.vendor ?? 'unknown'}, objective ${info.objectivePower ? `${info.objectivePower}×` : 'unknown'}, read by ${info.reader}`,
    ...info.levels.map((l, i) => `  level ${i}: ${l.width} × ${l.height} (downsample ${Number(l.downsample.toFixed(4))})`),
  ];
  if (info.associatedImages.length > 0) lines.push(`  associated images: ${info.associatedImages.join(', ')}`);
  return lines.join('\n');
}
