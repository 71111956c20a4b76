/**
 * `lungpath predict --run RUN [--json] [--heatmap OUTDIR] IMAGE...`
 */
import { mkdirSync } from 'node:fs';
import { basename, extname, join, resolve } from 'node:path';
import { createNodeRuntime } from '../../kernels/node.ts';
import { writeFileAtomic } from '../../nn/files.ts';
import { decodeImage } from '../decode.ts';
import { loadRunNetworks } from '../evaluate.ts';
import { useRunKernels } from '../kernels.ts';
import { renderHeatmap } from '../heatmap.ts';
import { predictImages } from '../predict.ts';
import { collectResizeNotes, MODEL_SIZE_HINT } from '../resize_notes.ts';
import { RunFolder } from '../run_folder.ts';
import { intFlag, parse, UsageError } from './args.ts';

const HELP = `Usage: lungpath predict --run RUN [options] IMAGE...

Classifies each image with a trained run: its class and class probabilities (Level 2) and the
per-patch Level-1 probabilities.

Options:
  --run RUN          the run folder written by 'lungpath train' (required)
  --json             one JSON object per line: {"file","class","probabilities","patches":[{"x","y","class","probabilities"}]}
  --heatmap OUTDIR   also write OUTDIR/<image>-heatmap.png: the image tinted by each patch's class, with a legend
  --batch-size N     patches per batch (default 16)
  -h, --help         this help`;

export async function runPredict(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { run: { type: 'string' }, json: { type: 'boolean' }, heatmap: { type: 'string' }, 'batch-size': { type: 'string' } }, true);
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (typeof values.run !== 'string') throw new UsageError('--run RUN is required');
  if (positionals.length === 0) throw new UsageError('give at least one IMAGE');
  const run = new RunFolder(resolve(values.run));
  const config = run.readConfig();
  const warn = (m: string) => console.error(`warning: ${m}`);
  const resized = collectResizeNotes(warn);
  const rt = await createNodeRuntime();
  useRunKernels(rt, run, warn);
  const { level1, level2 } = loadRunNetworks(rt, run, config);
  try {
    const files = positionals.map((p) => resolve(p));
    const predictions = await predictImages(rt, level1, level2, config, files, { batchSize: intFlag(values['batch-size'], 'batch-size', 16), warn: resized.warn, onMismatch: 'resize' });
    const summary = resized.summary(config.imageSize, MODEL_SIZE_HINT);
    if (summary) warn(summary);
    for (const p of predictions) {
      if (values.json) console.log(JSON.stringify(p));
      else {
        const probs = Object.entries(p.probabilities).map(([c, v]) => `${c} ${(100 * v).toFixed(1)}%`).join(', ');
        console.log(`${p.file}: ${p.class} (${probs})`);
      }
    }
    if (typeof values.heatmap === 'string') {
      const dir = resolve(values.heatmap);
      mkdirSync(dir, { recursive: true });
      for (const p of predictions) {
        const { rgb } = await decodeImage(p.file, { imageSize: config.imageSize, onMismatch: 'resize', warn: () => {} });
        const out = join(dir, `${basename(p.file, extname(p.file))}-heatmap.png`);
        writeFileAtomic(out, await renderHeatmap(rgb, config, p));
        if (!values.json) console.log(`wrote ${out}`);
      }
    }
  } finally {
    level1.destroy();
    level2.destroy();
    rt.destroy();
  }
  return 0;
}
