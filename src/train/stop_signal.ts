/**
 * A graceful stop on SIGINT or SIGTERM. `lungpath train` installs the handlers; the first signal
 * only sets `stopSignal.requested`, and the training loops of both levels look at it at every
 * batch boundary: they save a checkpoint there and throw StopRequested, which the CLI turns into
 * a message naming the checkpoint and exit code STOPPED_EXIT_CODE. So the stop comes within one
 * training batch, or — when the signal lands in a validation pass, the feature cache (checked per
 * image) or the final evaluation — after that pass, the current image or at once respectively.
 * The first signal also removes the handlers, so a second SIGINT or SIGTERM has the signal's default
 * action: the process ends at once — even inside a synchronous file write, where a JS handler
 * could not run — and a shell sees 130 or 143. An atomic write it interrupts leaves only a
 * temporary file, deleted by the next start; the checkpoints before it stay valid.
 *
 * Without `install()` (library use, tests) nothing listens; `request()` sets the flag by hand.
 */

/** Exit code of a run stopped by SIGINT/SIGTERM after saving a checkpoint (1: error, 2: usage). */
export const STOPPED_EXIT_CODE = 3;

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/** Thrown at a batch boundary after the checkpoint of a requested stop was saved. */
export class StopRequested extends Error {
  constructor(
    readonly signal: string,
    /** The checkpoint just saved (null when the stop came where none is taken, e.g. the feature cache). */
    readonly checkpoint: string | null,
    where: string,
  ) {
    super(
      checkpoint
        ? `stopped by ${signal} after ${where}; saved ${checkpoint}. Continue with the same command and --resume`
        : `stopped by ${signal} during ${where}; everything before it is saved. Continue with the same command and --resume`,
    );
    this.name = 'StopRequested';
  }
}

/** The stop flag, and the handlers that set it. */
export class StopSignal {
  /** The signal that asked to stop, or null. */
  requested: string | null = null;
  private handlers: [string, () => void][] = [];

  /** Listens for SIGINT and SIGTERM (`say` prints the notice of the first). */
  install(say: (message: string) => void = (m) => console.error(m)): void {
    if (this.handlers.length > 0) return;
    for (const signal of SIGNALS) {
      const handler = () => {
        this.requested = signal;
        this.removeHandlers(); // the next signal takes its default action: exit at once
        say(`lungpath: ${signal} received: saving a checkpoint at the end of the current batch, then exiting (send it again to exit at once)`);
      };
      process.on(signal, handler);
      this.handlers.push([signal, handler]);
    }
  }

  /** Stops listening and clears the flag. */
  uninstall(): void {
    this.removeHandlers();
    this.requested = null;
  }

  private removeHandlers(): void {
    for (const [signal, handler] of this.handlers) process.off(signal, handler);
    this.handlers = [];
  }

  /** Sets the flag as a signal would (tests, library callers). */
  request(signal = 'a stop request'): void {
    this.requested = signal;
  }

  /** Throws StopRequested when a stop was requested: call it right after saving `checkpoint`. */
  stopIfRequested(checkpoint: string | null, where: string): void {
    if (this.requested) throw new StopRequested(this.requested, checkpoint, where);
  }
}

/** The process's stop flag (one per process, like its signals). */
export const stopSignal = new StopSignal();
