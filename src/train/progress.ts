/**
 * Per-epoch progress: a cli-progress bar (loss, accuracy, items/s, ETA) on a terminal, plain
 * lines every `logEvery` steps otherwise (CI, pipes, files).
 */
import cliProgress from 'cli-progress';

export interface ProgressValues {
  loss: number;
  accuracy: number;
}

export class EpochProgress {
  private bar: cliProgress.SingleBar | null = null;
  private started = Date.now();
  private items = 0;

  constructor(
    private readonly title: string,
    private readonly total: number,
    private readonly unit: string,
    private readonly quiet = false,
  ) {
    if (!quiet && process.stdout.isTTY) {
      this.bar = new cliProgress.SingleBar(
        {
          format: `${title} [{bar}] {value}/{total} | loss {loss} | acc {acc} | {rate} ${unit}/s | ETA {eta_formatted}`,
          hideCursor: true,
          etaBuffer: 50,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(total, 0, { loss: '-', acc: '-', rate: '-' });
    }
  }

  /** After a step that processed `items` (patches or images). */
  update(step: number, items: number, values: ProgressValues): void {
    this.items += items;
    const seconds = (Date.now() - this.started) / 1000;
    const rate = seconds > 0 ? (this.items / seconds).toFixed(1) : '-';
    this.bar?.update(step, { loss: values.loss.toFixed(4), acc: (100 * values.accuracy).toFixed(1) + '%', rate });
  }

  /** A plain line (shown above the bar on a terminal). */
  log(line: string): void {
    if (this.quiet) return;
    if (this.bar) {
      this.bar.stop();
      console.log(line);
      this.bar.start(this.total, this.bar.getProgress() * this.total);
    } else {
      console.log(line);
    }
  }

  stop(): void {
    this.bar?.stop();
  }
}
