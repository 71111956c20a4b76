/**
 * Which images do runs get wrong, and how consistently? Reads the `report/report.json` that
 * `lungpath train` and `lungpath evaluate` write (one per run folder given, or report.json files
 * themselves) and prints, for every image some run misclassified: how many runs got it wrong, the
 * probability those runs gave its true class (min / median / max over all runs), and what they
 * took it for. Images every run gets wrong bound what any of these models can score on the split:
 * with k of them among n images, accuracy is at most (n − k) / n.
 *
 *   npx tsx tools/error-census.ts RUN|REPORT.json …
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';

interface Prediction {
  file: string;
  label: string;
  predicted: string;
  probabilities: number[];
}
interface Report {
  split: string;
  classes: string[];
  predictions: Prediction[];
}

const paths = process.argv.slice(2);
if (paths.length === 0) throw new Error('usage: npx tsx tools/error-census.ts RUN|REPORT.json … (see the header comment)');
const reportOf = (p: string) => (statSync(p).isDirectory() ? join(p, 'report', 'report.json') : p);

interface Tally {
  label: string;
  wrong: number;
  truth: number[];
  takenFor: Map<string, number>;
}
const tallies = new Map<string, Tally>();
let images: number | null = null;
const accuracies: number[] = [];
for (const p of paths) {
  const path = reportOf(p);
  if (!existsSync(path)) throw new Error(`${path}: no report (run lungpath evaluate on ${p} first)`);
  const report = JSON.parse(readFileSync(path, 'utf8')) as Report;
  if (images !== null && report.predictions.length !== images) throw new Error(`${path}: ${report.predictions.length} images, the first report had ${images} (another split?)`);
  images = report.predictions.length;
  accuracies.push(report.predictions.filter((x) => x.predicted === x.label).length / images);
  for (const x of report.predictions) {
    const t: Tally = tallies.get(x.file) ?? { label: x.label, wrong: 0, truth: [], takenFor: new Map() };
    t.truth.push(x.probabilities[report.classes.indexOf(x.label)] as number);
    if (x.predicted !== x.label) {
      t.wrong++;
      t.takenFor.set(x.predicted, (t.takenFor.get(x.predicted) ?? 0) + 1);
    }
    tallies.set(x.file, t);
  }
}

const runs = paths.length;
const rows = [...tallies].filter(([, t]) => t.wrong > 0).sort((a, b) => b[1].wrong - a[1].wrong || a[0].localeCompare(b[0]));
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
console.log(`${runs} runs, ${images} images each; ${rows.length} images misclassified by at least one run`);
console.log(`accuracy per run: ${accuracies.map(pct).join(', ')} (best ${pct(Math.max(...accuracies))})\n`);
console.log('| image | class | runs wrong | true-class probability (min / median / max) | taken for |');
console.log('|---|---|---:|---|---|');
for (const [file, t] of rows) {
  const sorted = [...t.truth].sort((a, b) => a - b);
  const median = sorted.length % 2 ? (sorted[(sorted.length - 1) / 2] as number) : ((sorted[sorted.length / 2 - 1] as number) + (sorted[sorted.length / 2] as number)) / 2;
  const takenFor = [...t.takenFor].map(([c, n]) => `${c} ×${n}`).join(', ');
  console.log(`| ${basename(file)} | ${t.label} | ${t.wrong} / ${runs} | ${(sorted[0] as number).toFixed(2)} / ${median.toFixed(2)} / ${(sorted.at(-1) as number).toFixed(2)} | ${takenFor} |`);
}
const always = rows.filter(([, t]) => t.wrong === runs).length;
if (images) console.log(`\n${always} images wrong in every run: accuracy at most ${(images - always)}/${images} = ${((100 * (images - always)) / images).toFixed(1)}% for any of these runs.`);
