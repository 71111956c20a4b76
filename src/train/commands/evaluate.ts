/**
 * `lungpath evaluate --run RUN [--data DIR] [--split test] [--tta] [--json]`.
 */
import { createNodeRuntime } from '../../kernels/node.ts';
import { evaluateRun, writeReport } from '../evaluate.ts';
import { useRunKernels } from '../kernels.ts';
import { RunFolder } from '../run_folder.ts';
import { choiceFlag, intFlag, parse, UsageError } from './args.ts';
import { ensureDefaultDataset } from './default_data.ts';
import { loadDataset } from './train.ts';
import { MODEL_SIZE_HINT, withoutResizeNotes } from '../resize_notes.ts';
import { resolve } from 'node:path';

const HELP = `Usage: lungpath evaluate --run RUN [options]

Patch-level and image-level accuracy, confusion matrix, per-class precision/recall/F1 and
one-vs-rest ROC/AUC of a trained run. Writes RUN/report/{report.json, report.md, roc.png, confusion.png}.

Options:
  --run RUN          the run folder written by 'lungpath train' (required)
  --data DIR         dataset (default: the built-in synthetic dataset)
  --split NAME       train | val | test (default test)
  --tta              8-way flip/rotation test-time augmentation, majority vote
  --batch-size N     patches per batch (default 16)
  --skip-bad         skip unreadable images instead of stopping
  --json             print report.json on stdout (nothing else)
  -h, --help         this help`;

export async function runEvaluate(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    run: { type: 'string' },
    data: { type: 'string' },
    split: { type: 'string' },
    tta: { type: 'boolean' },
    'batch-size': { type: 'string' },
    'skip-bad': { type: 'boolean' },
    json: { type: 'boolean' },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (typeof values.run !== 'string') throw new UsageError('--run RUN is required');
  const json = Boolean(values.json);
  const log = (m: string) => (json ? console.error(m) : console.log(m));
  const warn = (m: string) => console.error(`warning: ${m}`);
  const run = new RunFolder(resolve(values.run));
  const config = run.readConfig();
  const split = choiceFlag(values.split, 'split', ['train', 'val', 'test'] as const, 'test');
  const info = run.readTrainInfo();
  const dir = typeof values.data === 'string' ? resolve(values.data) : (info?.data ?? (await ensureDefaultDataset(log)));
  const dataset = await loadDataset(dir, config, info?.seed ?? 0, Boolean(values['skip-bad']), log, warn, MODEL_SIZE_HINT);
  const rt = await createNodeRuntime();
  useRunKernels(rt, run, warn);
  try {
    const report = await evaluateRun(rt, run, dataset, split, { tta: Boolean(values.tta), batchSize: intFlag(values['batch-size'], 'batch-size', 16), warn: withoutResizeNotes(warn), onMismatch: 'resize', log });
    await writeReport(run, report);
    if (json) console.log(JSON.stringify(report));
    else {
      log(`${split}: image-level accuracy ${(100 * report.accuracy).toFixed(1)}% (${report.images} images), patch-level ${(100 * report.patchAccuracy).toFixed(1)}% (${report.patches} patches), macro AUC ${report.macroAuc.toFixed(3)}`);
      log(`wrote ${run.report}/report.json, report.md, roc.png, confusion.png`);
    }
  } finally {
    rt.destroy();
  }
  return 0;
}
