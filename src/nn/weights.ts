/**
 * A module's state_dict to and from safetensors, with PyTorch names and layouts, so
 * `torch.nn.Module.load_state_dict` accepts our files and we accept torch's. The model config goes
 * in `__metadata__` as a JSON string. Loading checks every name, dtype and shape against the module
 * and names the first tensor that differs.
 */
import type { Module, StateEntry } from './modules.ts';
import { readTensors, type Tensor } from './tensor.ts';
import { entryToFloat32, parseSafetensors, serializeSafetensors, type SafetensorsFile, type TensorToWrite } from './safetensors.ts';

/** Reads the module's state from the GPU and serialises it. */
export async function weightsToSafetensors(module: Module, metadata: Record<string, string> = {}): Promise<Uint8Array> {
  const state = module.state();
  const floats = await readTensors(state.filter((e) => e.dtype !== 'I64').map((e) => e.tensor as NonNullable<StateEntry['tensor']> as Tensor));
  let next = 0;
  const tensors: TensorToWrite[] = state.map((entry) =>
    entry.dtype === 'I64'
      ? { name: entry.name, dtype: 'I64', shape: entry.shape, data: new BigInt64Array([BigInt(entry.get?.() ?? 0)]) }
      : { name: entry.name, dtype: 'F32', shape: entry.shape, data: floats[next++] as Float32Array },
  );
  return serializeSafetensors(tensors, metadata);
}

/** A shape for an error message, cut to 80 characters (a hostile file may declare a million dimensions). */
function describe(shape: readonly number[]): string {
  const text = `[${shape.slice(0, 40).join(', ')}]`;
  return text.length > 80 || shape.length > 40 ? `${text.slice(0, 76)}...]` : text;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Checks that `file` holds exactly the module's state (names, dtypes, shapes) and throws naming
 * the first tensor that differs.
 */
export function checkArchitecture(module: Module, file: SafetensorsFile, source: string): void {
  const expected = module.state();
  const names = new Set(expected.map((e) => e.name));
  for (const entry of expected) {
    const found = file.tensors.get(entry.name);
    if (!found) throw new Error(`${source}: tensor '${entry.name}' is missing (the file is of another architecture)`);
    if (found.dtype !== entry.dtype) throw new Error(`${source}: tensor '${entry.name}' is ${found.dtype}, expected ${entry.dtype}`);
    if (!sameShape(found.shape, entry.shape)) {
      throw new Error(`${source}: tensor '${entry.name}' has shape ${describe(found.shape)}, this model has ${describe(entry.shape)} (another architecture)`);
    }
  }
  for (const name of file.tensors.keys()) {
    if (!names.has(name)) throw new Error(`${source}: tensor '${name.length > 80 ? `${name.slice(0, 77)}...` : name}' is not part of this model (another architecture)`);
  }
}

/** Loads a parsed file into the module (GPU writes are recorded, not waited for). */
export function loadWeights(module: Module, file: SafetensorsFile, source: string): void {
  checkArchitecture(module, file, source);
  for (const entry of module.state()) {
    const found = file.tensors.get(entry.name);
    if (!found) continue;
    if (entry.dtype === 'I64') {
      const copy = new Uint8Array(8);
      copy.set(found.data);
      entry.set?.(Number(new DataView(copy.buffer).getBigInt64(0, true)));
    } else if (entry.tensor) {
      entry.tensor.rt.write(entry.tensor.buffer, entryToFloat32(found, entry.name));
    }
  }
}

/** Parses bytes and loads them; returns the file's metadata. */
export function loadWeightsFromBytes(module: Module, bytes: Uint8Array, source: string): Record<string, string> {
  const file = parseSafetensors(bytes, source);
  loadWeights(module, file, source);
  return file.metadata;
}
