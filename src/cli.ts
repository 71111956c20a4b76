/**
 * The `lungpath` command line: train, evaluate, predict, synth. Each command parses its own flags
 * with node:util parseArgs (strict: unknown flags and bad values are refused) and has --help.
 */
import { UsageError } from './train/commands/args.ts';

/** A command: its line in the usage, and its module, imported only when the command runs (fast --help). */
interface Command {
  summary: string;
  load: () => Promise<(argv: string[]) => Promise<number>>;
}

const COMMANDS: Record<string, Command> = {
  train: { summary: 'train both levels (default: synthetic data, tiny preset)', load: async () => (await import('./train/commands/train.ts')).runTrain },
  evaluate: { summary: 'accuracy, confusion, ROC/AUC of a trained run on a split', load: async () => (await import('./train/commands/evaluate.ts')).runEvaluate },
  predict: { summary: 'classify images, with per-patch probabilities and heatmaps', load: async () => (await import('./train/commands/predict.ts')).runPredict },
  synth: { summary: 'generate a synthetic H&E dataset', load: async () => (await import('./train/commands/synth.ts')).runSynth },
  slide: { summary: 'slide info SLIDE...: levels, mpp, vendor of whole-slide images', load: async () => (await import('./train/commands/slide.ts')).runSlide },
  tiles: { summary: 'cut training tiles from whole slides (QuPath annotations or slide labels)', load: async () => (await import('./train/commands/tiles.ts')).runTiles },
  'predict-slide': { summary: 'classify whole slides: per-tile CSV, heatmap, QuPath GeoJSON, DZI overlay', load: async () => (await import('./train/commands/predict_slide.ts')).runPredictSlide },
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
    return await (await command.load())(rest);
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
