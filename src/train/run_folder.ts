/**
 * The layout of a run folder — config.json, level1/level2 weights, checkpoints/, cache/,
 * metrics.jsonl, curves.png, report/ — and its small readers and writers.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { validateConfig, type ModelConfig } from '../nn/config.ts';
import { asDiskFull, removeStaleTempFiles, writeFileAtomic } from '../nn/files.ts';
import { listCheckpoints, readCheckpoint } from './checkpoint.ts';

export interface TrainInfo {
  data: string;
  seed: number;
  command: string;
}

export class RunFolder {
  constructor(readonly dir: string) {}

  get configPath(): string {
    return join(this.dir, 'config.json');
  }
  get level1Weights(): string {
    return join(this.dir, 'level1.safetensors');
  }
  get level2Weights(): string {
    return join(this.dir, 'level2.safetensors');
  }
  get checkpoints(): string {
    return join(this.dir, 'checkpoints');
  }
  get cache(): string {
    return join(this.dir, 'cache');
  }
  get metrics(): string {
    return join(this.dir, 'metrics.jsonl');
  }
  get curves(): string {
    return join(this.dir, 'curves.png');
  }
  get report(): string {
    return join(this.dir, 'report');
  }
  /** Where the data came from and the seed that split it, so evaluate/predict see the same split. */
  get trainInfo(): string {
    return join(this.dir, 'train.json');
  }
  /** The images the run started with (data_manifest.ts). */
  get dataManifest(): string {
    return join(this.dir, 'data.json');
  }

  /** The newest checkpoint of each level that verifies (what --resume continues from). */
  lastGoodCheckpoints(): string[] {
    return ['level1', 'level2'].flatMap((level) => {
      for (const name of listCheckpoints(this.checkpoints, level).reverse()) {
        try {
          readCheckpoint(join(this.checkpoints, name));
          return [join(this.checkpoints, name)];
        } catch {
          // corrupt: --resume falls back past it too
        }
      }
      return [];
    });
  }

  /** Makes the folders; deletes temporary files of writes a killed process left (returns their paths). */
  create(): string[] {
    mkdirSync(this.checkpoints, { recursive: true });
    mkdirSync(this.cache, { recursive: true });
    return [this.dir, this.checkpoints, this.cache].flatMap((d) => removeStaleTempFiles(d).map((name) => join(d, name)));
  }

  writeConfig(config: ModelConfig): void {
    writeFileAtomic(this.configPath, `${JSON.stringify(config, null, 2)}\n`);
  }

  /** The run's config; a clear error when the folder is not a run. */
  readConfig(): ModelConfig {
    if (!existsSync(this.configPath)) throw new Error(`${this.dir}: not a lungpath run folder (no config.json)`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(this.configPath, 'utf8'));
    } catch (e) {
      throw new Error(`${this.configPath}: not valid JSON (${(e as Error).message})`);
    }
    try {
      return validateConfig(parsed);
    } catch (e) {
      throw new Error(`${this.configPath}: ${(e as Error).message}`);
    }
  }

  writeTrainInfo(info: TrainInfo): void {
    writeFileAtomic(this.trainInfo, `${JSON.stringify(info, null, 2)}\n`);
  }

  readTrainInfo(): TrainInfo | null {
    if (!existsSync(this.trainInfo)) return null;
    return JSON.parse(readFileSync(this.trainInfo, 'utf8')) as TrainInfo;
  }

  /** Appends one JSON object as a line of metrics.jsonl. */
  logMetric(record: Record<string, unknown>): void {
    const line = `${JSON.stringify({ time: new Date().toISOString(), ...record })}\n`;
    try {
      appendFileSync(this.metrics, line);
    } catch (e) {
      throw asDiskFull(e, this.metrics, line.length); // a line cut short is skipped by readMetrics
    }
  }

  readMetrics(): Record<string, unknown>[] {
    if (!existsSync(this.metrics)) return [];
    return readFileSync(this.metrics, 'utf8')
      .split('\n')
      .filter((line) => line.trim().length > 0)
      .flatMap((line) => {
        try {
          return [JSON.parse(line) as Record<string, unknown>];
        } catch {
          return []; // a line cut short by a crash
        }
      });
  }
}
