/**
 * A trained run as a classifier, for programs: `openRun(dir)` loads RUN/config.json and the two
 * networks' weights (with the kernel versions the run recorded), and classifies image files or
 * decoded pixels exactly as `lungpath predict` does (same decoding, same kernels, same order).
 */
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createNodeRuntime } from '../kernels/node.ts';
import type { Runtime } from '../kernels/runtime.ts';
import { classifyImage, type ImagePrediction } from '../nn/classify.ts';
import type { ModelConfig } from '../nn/config.ts';
import type { TwoPartNetwork } from '../nn/networks.ts';
import { decodeImage, isImageFile, type MismatchPolicy } from './decode.ts';
import { loadRunNetworks } from './evaluate.ts';
import { useRunKernels } from './kernels.ts';
import { RunFolder } from './run_folder.ts';

export interface OpenRunOptions {
  /** Runtime to use (default: a new Node runtime on Dawn's best adapter, destroyed by close()). */
  runtime?: Runtime;
  /** Patches per Level-1 batch (default 16); results do not depend on it. */
  batchSize?: number;
  /** An image whose size differs from the run's imageSize: resized (default) or refused. */
  onMismatch?: MismatchPolicy;
  /** Where warnings go (default: stderr). */
  warn?: (message: string) => void;
}

/** A loaded run; call close() to free its GPU memory. */
export interface RunClassifier {
  readonly dir: string;
  readonly config: ModelConfig;
  readonly runtime: Runtime;
  readonly level1: TwoPartNetwork;
  readonly level2: TwoPartNetwork;
  /** One image file (PNG, JPEG, TIFF, WebP): its class, probabilities and per-patch probabilities. */
  classifyFile(path: string): Promise<ImagePrediction>;
  /** Every image file directly in `dir`, in name order. */
  classifyFolder(dir: string): Promise<ImagePrediction[]>;
  /** Decoded RGB pixels, imageSize × imageSize × 3, row-major. */
  classifyPixels(rgb: Uint8Array, name?: string): Promise<ImagePrediction>;
  close(): void;
}

/** Opens the run folder written by `lungpath train`; errors name the missing or invalid file. */
export async function openRun(dir: string, options: OpenRunOptions = {}): Promise<RunClassifier> {
  const run = new RunFolder(resolve(dir));
  const config = run.readConfig();
  const warn = options.warn ?? ((m: string) => console.error(`warning: ${m}`));
  const ownsRuntime = !options.runtime;
  const rt = options.runtime ?? (await createNodeRuntime());
  try {
    useRunKernels(rt, run, warn);
    const { level1, level2 } = loadRunNetworks(rt, run, config);
    const batchSize = options.batchSize ?? 16;
    const onMismatch = options.onMismatch ?? 'resize';
    const classifyPixels = (rgb: Uint8Array, name = 'image') => classifyImage(rt, level1, level2, config, rgb, { file: name, batchSize });
    const classifyFile = async (path: string) => {
      const { rgb } = await decodeImage(path, { imageSize: config.imageSize, onMismatch, warn, patchSize: config.patch.size });
      return classifyPixels(rgb, path);
    };
    return {
      dir: run.dir,
      config,
      runtime: rt,
      level1,
      level2,
      classifyFile,
      classifyPixels,
      async classifyFolder(folder: string) {
        const files = readdirSync(folder).filter(isImageFile).sort().map((f) => join(resolve(folder), f));
        const out: ImagePrediction[] = [];
        for (const f of files) out.push(await classifyFile(f));
        return out;
      },
      close() {
        level1.destroy();
        level2.destroy();
        if (ownsRuntime) rt.destroy();
      },
    };
  } catch (e) {
    if (ownsRuntime) rt.destroy();
    throw e;
  }
}
