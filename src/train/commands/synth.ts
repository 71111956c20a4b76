/**
 * `lungpath synth --out DIR [--per-class N] [--size PX] [--seed S] [--layout split|flat] [--stain-variation V]`
 */
import { resolve } from 'node:path';
import { generateSynthDataset } from '../synth.ts';
import { choiceFlag, floatFlag, intFlag, parse, UsageError } from './args.ts';

const HELP = `Usage: lungpath synth --out DIR [options]

Generates synthetic H&E-like images of the four classes (NORM, SCLC, SC, ADC), each drawn with
its morphology; the same seed gives byte-identical files.

Options:
  --out DIR            output folder (required)
  --per-class N        images per class (default 100)
  --size PX            image side in pixels (default 256)
  --seed S             seed (default 0)
  --layout split|flat  DIR/{train,val,test}/<CLASS>/ (default) or DIR/<CLASS>/
  --stain-variation V  per-image stain variation, 1 (default: mild) to 10; 3 makes images differ in
                       stain as strongly as real slides do (tests BatchNorm statistics)
  -h, --help           this help`;

export async function runSynth(argv: string[]): Promise<number> {
  const { values } = parse(argv, { out: { type: 'string' }, 'per-class': { type: 'string' }, size: { type: 'string' }, seed: { type: 'string' }, layout: { type: 'string' }, 'stain-variation': { type: 'string' } });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (typeof values.out !== 'string') throw new UsageError('--out DIR is required');
  const options = {
    out: resolve(values.out),
    perClass: intFlag(values['per-class'], 'per-class', 100),
    size: intFlag(values.size, 'size', 256, 16),
    seed: intFlag(values.seed, 'seed', 0, 0),
    layout: choiceFlag(values.layout, 'layout', ['split', 'flat'] as const, 'split'),
    stainVariation: floatFlag(values['stain-variation'], 'stain-variation', 1, (v) => v >= 1 && v <= 10),
  };
  const started = Date.now();
  const { files } = await generateSynthDataset(options, (done, total) => {
    if (process.stdout.isTTY) process.stdout.write(`\r${done}/${total} images`);
  });
  if (process.stdout.isTTY) process.stdout.write('\n');
  console.log(`wrote ${files} images to ${options.out} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return 0;
}
