/**
 * What averaging several models buys, measured on finished cross-validations: each CV folder given
 * (tools/cross-validate.ts, all on the same folds: the same data and --split-seed) is one member;
 * the ensemble's answer for a test image is the class of largest mean probability over the members.
 * Prints each member's pooled accuracy, the ensemble's (95% Wilson interval, macro AUC, per fold,
 * confusion), the images every member gets wrong (a bound on any vote of them), the images right
 * only with the ensemble against only with the first member (exact sign test), and with --subsets
 * every ensemble of 2 … n−1 members (its mean, smallest and largest).
 *
 *   npx tsx tools/cv-ensemble.ts CV CV … [--report run/report/report.json] [--subsets] [--json FILE]
 *
 * --report picks the report each fold folder holds: `colour-normalised/report.json` scores the
 * members on the colour-normalised copies of the same test images.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { readCvPredictions, scoreEnsemble, scoreMember, signTestP, subsets, type CvPredictions, type PooledScore } from './ensemble_predictions.ts';

const USAGE = 'usage: npx tsx tools/cv-ensemble.ts CV CV … [--report run/report/report.json] [--subsets] [--json FILE]';
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { report: { type: 'string', default: join('run', 'report', 'report.json') }, subsets: { type: 'boolean', default: false }, json: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
});
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
if (positionals.length < 2) throw new Error(`${USAGE}\n(an ensemble needs at least two cross-validation folders; ${positionals.length} given)`);

const members = positionals.map((dir) => readCvPredictions(dir, values.report));
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const line = (s: PooledScore) => `${pct(s.accuracy)} (${s.correct}/${s.images}; ${pct(s.wilson95[0])}–${pct(s.wilson95[1])}), macro AUC ${s.macroAuc.toFixed(3)}, per fold ${s.perFold.join(', ')}`;

const memberScores = members.map(scoreMember);
const all = scoreEnsemble(members);
console.log(`Reports: fold-K/${values.report} of each folder; ${all.images} test images in ${all.perFold.length} folds, classes ${members[0]!.classes.join(', ')}.\n`);
console.log('| member | pooled accuracy |\n|---|---|');
members.forEach((m, i) => console.log(`| ${m.dir} | ${line(memberScores[i]!)} |`));
console.log(`\n**Ensemble of all ${members.length} (mean probability): ${line(all)}.**`);
console.log(`Confusion (rows true ${members[0]!.classes.join(', ')}; columns predicted): ${all.confusion.map((r) => `[${r.join(', ')}]`).join(' ')}.`);
const first = memberScores[0]!;
const onlyEnsemble = all.right.filter((r, i) => r && !first.right[i]).length;
const onlyFirst = all.right.filter((r, i) => !r && first.right[i]).length;
const everyMemberWrong = all.right.filter((_, i) => memberScores.every((m) => !m.right[i])).length;
console.log(`Wrong in every member: ${everyMemberWrong} images (no vote of these members can score more than ${all.images - everyMemberWrong}/${all.images} = ${pct((all.images - everyMemberWrong) / all.images)}).`);
console.log(`Against ${members[0]!.dir} alone: right only with the ensemble ${onlyEnsemble}, only without ${onlyFirst} (exact two-sided sign test p = ${signTestP(onlyEnsemble, onlyFirst).toFixed(3)}).`);

const bySize: { size: number; ensembles: { members: string[]; correct: number; accuracy: number }[]; meanAccuracy: number }[] = [];
if (values.subsets) {
  for (let size = 2; size < members.length; size++) {
    const ensembles = subsets(members, size).map((group: CvPredictions[]) => {
      const s = scoreEnsemble(group);
      return { members: group.map((m) => m.dir), correct: s.correct, accuracy: s.accuracy };
    });
    const meanAccuracy = ensembles.reduce((a, e) => a + e.accuracy, 0) / ensembles.length;
    bySize.push({ size, ensembles, meanAccuracy });
    const acc = ensembles.map((e) => e.accuracy);
    console.log(`\nEnsembles of ${size} (${ensembles.length}): mean ${pct(meanAccuracy)}, ${pct(Math.min(...acc))}–${pct(Math.max(...acc))}`);
    for (const e of ensembles) console.log(`- ${e.members.join(' + ')}: ${pct(e.accuracy)} (${e.correct})`);
  }
  const meanMember = memberScores.reduce((a, s) => a + s.accuracy, 0) / memberScores.length;
  console.log(`\nSingle members: mean ${pct(meanMember)}.`);
}

if (values.json) {
  const strip = ({ right: _, ...s }: PooledScore) => s;
  writeFileSync(values.json, `${JSON.stringify({ report: values.report, members: members.map((m, i) => ({ dir: m.dir, ...strip(memberScores[i]!) })), ensemble: strip(all), everyMemberWrong, onlyEnsemble, onlyFirst, signTestP: signTestP(onlyEnsemble, onlyFirst), subsets: bySize }, null, 1)}\n`);
}
