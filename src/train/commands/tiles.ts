/**
 * `lungpath tiles SLIDE... --out DATASET [--annotations DIR | --labels CSV] [--size PX] [--mpp X]
 * [--min-tissue F] [--min-inside F] [--classes A,B] [--seed S] [--reader R] [--jobs N] [--json]`:
 * cuts training tiles from whole slides (src/slide/cut.ts).
 */
import { availableParallelism } from 'node:os';
import cliProgress from 'cli-progress';
import { SEED_CONFIG } from '../../nn/config.ts';
import { cutTiles } from '../../slide/cut.ts';
import { READER_CHOICES, type ReaderChoice } from '../../slide/open.ts';
import { choiceFlag, floatFlag, intFlag, parse, UsageError } from './args.ts';

const HELP = `Usage: lungpath tiles SLIDE... --out DATASET (--annotations DIR | --labels CSV) [options]

Cuts square tiles from whole-slide images into DATASET/{train,val,test}/<CLASS>/, the layout
'lungpath train' reads, split by slide (by patient when the CSV names them): no slide's tiles
are in two splits. Writes DATASET/tiles.csv (one row per tile) and DATASET/masks/<slide>.png
(the tissue mask over the thumbnail). Run it again to resume; finished slides are skipped.

Options:
  --out DATASET        output folder (required)
  --annotations DIR    QuPath GeoJSON exports, DIR/<slide file name without extension>.geojson;
                       each annotation's classification is the tile's class
  --labels CSV         one label per slide instead: columns slide,label[,patient]
  --size PX            tile side in pixels (default ${SEED_CONFIG.imageSize}, the model's imageSize)
  --mpp X              microns per tile pixel (default: the slide's level 0); read from the
                       nearest finer pyramid level and resampled (Lanczos-3)
  --min-tissue F       least tissue fraction of a tile, 0..1 (default 0.5)
  --min-inside F       least share of a tile inside an annotation, 0..1 (default 0.5)
  --classes A,B,...    the allowed class names; others are an error (default: any)
  --seed S             seed of the split by slide (default 0)
  --reader R           auto, openslide or js (default auto)
  --jobs N             tiles in flight at once (default: CPU cores, ${availableParallelism()} here)
  --json               print a JSON summary instead of lines
  -h, --help           this help`;

const share = (n: number) => n >= 0 && n <= 1;

export async function runTiles(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      out: { type: 'string' },
      annotations: { type: 'string' },
      labels: { type: 'string' },
      size: { type: 'string' },
      mpp: { type: 'string' },
      'min-tissue': { type: 'string' },
      'min-inside': { type: 'string' },
      classes: { type: 'string' },
      seed: { type: 'string' },
      reader: { type: 'string' },
      jobs: { type: 'string' },
      json: { type: 'boolean' },
    },
    true,
  );
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (typeof values.out !== 'string') throw new UsageError('--out DATASET is required');
  if (positionals.length === 0) throw new UsageError('give at least one slide file');
  if ((values.annotations === undefined) === (values.labels === undefined)) throw new UsageError('give either --annotations DIR or --labels CSV');
  const json = values.json === true;
  const classes = typeof values.classes === 'string' ? values.classes.split(',').map((c) => c.trim()).filter(Boolean) : undefined;
  let bar: cliProgress.SingleBar | null = null;
  const summary = await cutTiles({
    slides: positionals,
    out: values.out,
    annotations: typeof values.annotations === 'string' ? values.annotations : undefined,
    labels: typeof values.labels === 'string' ? values.labels : undefined,
    size: intFlag(values.size, 'size', SEED_CONFIG.imageSize, 16),
    mpp: values.mpp === undefined ? undefined : floatFlag(values.mpp, 'mpp', 0),
    minTissue: floatFlag(values['min-tissue'], 'min-tissue', 0.5, share),
    minInside: floatFlag(values['min-inside'], 'min-inside', 0.5, (n) => n > 0 && n <= 1),
    classes,
    seed: intFlag(values.seed, 'seed', 0, 0),
    reader: choiceFlag(values.reader, 'reader', READER_CHOICES, 'auto') as ReaderChoice,
    concurrency: intFlag(values.jobs, 'jobs', availableParallelism()),
    onStage: (line) => {
      if (!json) console.log(line);
    },
    onProgress: (done, total) => {
      if (json || !process.stdout.isTTY || total === 0) return;
      if (!bar) {
        bar = new cliProgress.SingleBar({ format: 'tiles [{bar}] {value}/{total} | {percentage}% | ETA {eta_formatted}', hideCursor: true, etaBuffer: 100 }, cliProgress.Presets.shades_classic);
        bar.start(total, done);
      }
      bar.update(done);
      if (done === total) bar.stop();
    },
  });
  if (json) {
    console.log(JSON.stringify(summary, null, 2));
  } else {
    const per = (['train', 'val', 'test'] as const).map((s) => `${s} ${summary.splits[s].tiles} tiles from ${summary.splits[s].slides} slides`).join(', ');
    console.log(`${summary.tiles} tiles (${summary.written} written now) of ${summary.classes.join(', ')} in ${summary.out}: ${per}`);
    console.log(`manifest: ${summary.manifest}; tissue masks: ${summary.out}/masks/`);
  }
  for (const w of summary.warnings) console.error(`lungpath tiles: warning: ${w}`);
  return 0;
}
