/**
 * Evaluation of a trained run on one split, as the write-up did: patch-level accuracy (Level 1 on
 * every patch), image-level accuracy (Level 2), confusion matrix, per-class precision/recall/F1,
 * one-vs-rest ROC with AUC per class and macro AUC; optionally the original's 8-way flip/rotation
 * test-time augmentation with a majority vote. Writes report.json, report.md, roc.png, confusion.png.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describeAdapter } from '../kernels/device.ts';
import type { Runtime } from '../kernels/runtime.ts';
import type { ModelConfig } from '../nn/config.ts';
import { readFileBytes, writeFileAtomic } from '../nn/files.ts';
import { buildImageNetwork, buildPatchNetwork, type TwoPartNetwork } from '../nn/networks.ts';
import { loadWeightsFromBytes } from '../nn/weights.ts';
import type { Dataset } from './dataset.ts';
import { cachedFeatures, DIHEDRAL_VARIANTS } from './features.ts';
import { evaluatePatches } from './level1.ts';
import { evaluateImages } from './level2.ts';
import { accuracy, argmax, confusionMatrix, macroAuc, oneVsRestRoc, perClassReport, type ClassReport, type RocCurve } from './metrics.ts';
import { confusionPlot, rocPlot } from './plots.ts';
import type { RunFolder } from './run_folder.ts';

export interface EvaluationReport {
  run: string;
  split: string;
  classes: string[];
  adapter: string;
  tta: boolean;
  images: number;
  accuracy: number;
  patches: number;
  patchAccuracy: number;
  confusion: number[][];
  perClass: Record<string, ClassReport>;
  auc: Record<string, number>;
  macroAuc: number;
  roc: Record<string, { fpr: number[]; tpr: number[] }>;
  predictions: { file: string; label: string; predicted: string; probabilities: number[] }[];
}

export interface EvaluateOptions {
  tta: boolean;
  batchSize: number;
  warn: (m: string) => void;
  onMismatch: 'resize' | 'refuse';
  log: (m: string) => void;
}

/**
 * Refuses weights trained with another colour normalisation than config.json now states (an
 * edited or swapped config.json): evaluating them without the preprocessing they learned with
 * would silently score a different model. Weights without a config in their metadata pass.
 */
function checkSamePreprocessing(configPath: string, config: ModelConfig, weightsPath: string, metadata: Record<string, string>): void {
  if (metadata.config === undefined) return;
  let trained: unknown;
  try {
    trained = (JSON.parse(metadata.config) as ModelConfig).colourNormalise ?? null;
  } catch {
    return; // loadModel names a malformed metadata config; here only the preprocessing matters
  }
  const stated = config.colourNormalise ?? null;
  if (JSON.stringify(trained) !== JSON.stringify(stated)) {
    throw new Error(`${weightsPath}: trained with colourNormalise ${JSON.stringify(trained)}, but ${configPath} states ${JSON.stringify(stated)}; restore the run's config.json (the preprocessing must be the one the weights learned with)`);
  }
}

/** Loads a run's trained networks (caller destroys them); errors name the file. */
export function loadRunNetworks(rt: Runtime, run: RunFolder, config: ModelConfig): { level1: TwoPartNetwork; level2: TwoPartNetwork; level1Bytes: Uint8Array } {
  const level1 = buildPatchNetwork(rt, config, 0);
  const level1Bytes = readFileBytes(run.level1Weights);
  checkSamePreprocessing(run.configPath, config, run.level1Weights, loadWeightsFromBytes(level1, level1Bytes, run.level1Weights));
  const level2 = buildImageNetwork(rt, config, 0);
  checkSamePreprocessing(run.configPath, config, run.level2Weights, loadWeightsFromBytes(level2, readFileBytes(run.level2Weights), run.level2Weights));
  return { level1: level1.eval(), level2: level2.eval(), level1Bytes };
}

/** Majority vote over the variants' predicted classes; ties go to the highest mean probability. */
export function majorityVote(variantProbabilities: readonly Float64Array[] | readonly number[][], classes: number): { predicted: number; mean: number[] } {
  const votes = new Array<number>(classes).fill(0);
  const mean = new Array<number>(classes).fill(0);
  for (const p of variantProbabilities) {
    votes[argmax(p)] = (votes[argmax(p)] ?? 0) + 1;
    for (let c = 0; c < classes; c++) mean[c] = (mean[c] as number) + (p[c] as number) / variantProbabilities.length;
  }
  const top = Math.max(...votes);
  let predicted = -1;
  for (let c = 0; c < classes; c++) if (votes[c] === top && (predicted < 0 || (mean[c] as number) > (mean[predicted] as number))) predicted = c;
  return { predicted, mean };
}

export async function evaluateRun(rt: Runtime, run: RunFolder, dataset: Dataset, split: 'train' | 'val' | 'test', o: EvaluateOptions): Promise<EvaluationReport> {
  const config = run.readConfig();
  const images = dataset.splits[split];
  if (images.length === 0) throw new Error(`${dataset.root}: the ${split} split has no images`);
  const classes = config.classes.length;
  const { level1, level2, level1Bytes } = loadRunNetworks(rt, run, config);
  try {
    const patch = await evaluatePatches(rt, level1, images, config, { batchSize: o.batchSize, seed: 0, warn: o.warn, onMismatch: o.onMismatch });
    const variants = o.tta ? DIHEDRAL_VARIANTS : [0];
    const perVariant: Float32Array[][] = [];
    for (const variant of variants) {
      const features = await cachedFeatures(rt, run.cache, split, level1, level1Bytes, config, images, { variant, warn: o.warn, onMismatch: o.onMismatch, log: o.log });
      perVariant.push((await evaluateImages(rt, level2, features, config, o.batchSize)).logp);
      features.close();
    }
    const labels = images.map((i) => i.label);
    const decided = images.map((_, i) => majorityVote(perVariant.map((logp) => Array.from(logp[i] as Float32Array, Math.exp)), classes));
    const predicted = decided.map((d) => d.predicted);
    const probabilities = decided.map((d) => d.mean);
    const confusion = confusionMatrix(labels, predicted, classes);
    const report = perClassReport(confusion);
    const curves: RocCurve[] = oneVsRestRoc(probabilities, labels, classes);
    const byClass = <T,>(values: T[]) => Object.fromEntries(config.classes.map((c, i) => [c, values[i] as T]));
    return {
      run: run.dir,
      split,
      classes: config.classes,
      adapter: describeAdapter(rt.adapter),
      tta: o.tta,
      images: images.length,
      accuracy: accuracy(labels, predicted),
      patches: patch.count,
      patchAccuracy: patch.correct / patch.count,
      confusion,
      perClass: byClass(report),
      auc: byClass(curves.map((c) => c.auc)),
      macroAuc: macroAuc(curves),
      roc: byClass(curves.map((c) => ({ fpr: c.fpr, tpr: c.tpr }))),
      predictions: images.map((image, i) => ({
        file: image.path,
        label: config.classes[image.label] as string,
        predicted: config.classes[predicted[i] as number] as string,
        probabilities: probabilities[i] as number[],
      })),
    };
  } finally {
    level1.destroy();
    level2.destroy();
  }
}

function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

/** report.md: the figures a person reads first. */
export function reportMarkdown(r: EvaluationReport): string {
  const lines = [
    `# lungpath evaluation — ${r.split} split${r.tta ? ' (8-way TTA, majority vote)' : ''}`,
    '',
    `Run: \`${r.run}\` · adapter: ${r.adapter}`,
    '',
    `- Image-level accuracy (Level 2): **${pct(r.accuracy)}** of ${r.images} images`,
    `- Patch-level accuracy (Level 1): **${pct(r.patchAccuracy)}** of ${r.patches} patches`,
    `- Macro AUC (one-vs-rest): **${r.macroAuc.toFixed(3)}**`,
    '',
    '| class | precision | recall | F1 | support | AUC |',
    '|---|---:|---:|---:|---:|---:|',
    ...r.classes.map((c) => {
      const p = r.perClass[c] as ClassReport;
      return `| ${c} | ${p.precision.toFixed(3)} | ${p.recall.toFixed(3)} | ${p.f1.toFixed(3)} | ${p.support} | ${(r.auc[c] as number).toFixed(3)} |`;
    }),
    '',
    'Confusion matrix (rows: true class, columns: predicted):',
    '',
    `| | ${r.classes.join(' | ')} |`,
    `|---|${r.classes.map(() => '---:').join('|')}|`,
    ...r.confusion.map((row, i) => `| **${r.classes[i]}** | ${row.join(' | ')} |`),
    '',
    '![ROC](roc.png) ![Confusion](confusion.png)',
    '',
  ];
  return lines.join('\n');
}

export async function writeReport(run: RunFolder, r: EvaluationReport): Promise<void> {
  mkdirSync(run.report, { recursive: true });
  writeFileAtomic(join(run.report, 'report.json'), `${JSON.stringify(r, null, 2)}\n`);
  writeFileAtomic(join(run.report, 'report.md'), reportMarkdown(r));
  const curves = r.classes.map((c) => ({ ...(r.roc[c] as { fpr: number[]; tpr: number[] }), auc: r.auc[c] as number }));
  writeFileAtomic(join(run.report, 'roc.png'), await rocPlot(curves, r.classes, `ROC, one vs rest — ${r.split} split (${r.images} images)`));
  writeFileAtomic(join(run.report, 'confusion.png'), await confusionPlot(r.confusion, r.classes, `Confusion — ${r.split} split, image level`));
}
