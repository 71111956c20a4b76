/**
 * The `lungpath` command line: train, evaluate, predict, synth. Each command parses its own flags
 * with node:util parseArgs (strict: unknown flags and bad values are refused) and has --help.
 */
import { runEvaluate } from './train/commands/evaluate.ts';
import { runPredict } from './train/commands/predict.ts';
import { runPredictSlide } from './train/commands/predict_slide.ts';
import { runSlide } from './train/commands/slide.ts';
import { runSynth } from './train/commands/synth.ts';
import { runTrain } from './train/commands/train.ts';
import { UsageError } from './train/commands/args.ts';

const COMMANDS: Record<string, { summary: string; run: (argv: string[]) => Promise<number> }> = {
  train: { summary: 'train both levels (default: synthetic data, tiny preset)', run: runTrain },
  evaluate: { summary: 'accuracy, confusion, ROC/AUC of a trained run on a split', run: runEvaluate },
  predict: { summary: 'classify images, with per-patch probabilities and heatmaps', run: runPredict },
  synth: { summary: 'generate a synthetic H&E dataset', run: runSynth },
  'predict-slide': { summary: 'classify whole slides: heatmap, QuPath GeoJSON, Deep Zoom overlay', run: runPredictSlide },
  slide: { summary: 'slide info SLIDE...: levels, mpp, vendor of whole-slide images', run: runSlide },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return `Usage: lungpath <command> [options]\n\nCommands:\n${lines.join('\n')}\n\nRun 'lungpath <command> --help' for a command's options.`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    console.error(`lungpath: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  try {
    return await command.run(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`lungpath ${name}: ${e.message}\nRun 'lungpath ${name} --help' for the options.`);
      return 2;
    }
    console.error(`lungpath ${name}: ${(e as Error).message}`);
    if (process.env.LUNGPATH_DEBUG) console.error((e as Error).stack);
    return 1;
  }
}
