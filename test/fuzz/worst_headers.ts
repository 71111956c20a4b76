/**
 * Child process of safetensors.fuzz.test.ts: parses the costliest headers we know of, each as long
 * as MAX_HEADER_BYTES allows, and prints one JSON line per header: kind, ms, and the error message
 * (or null when it parsed). Run under `--max-old-space-size` so a header that needs more heap than
 * the stated cap kills the process instead of passing.
 */
import { MAX_HEADER_BYTES, parseSafetensors, SafetensorsError } from '../../src/nn/safetensors.ts';

const N = MAX_HEADER_BYTES;
const entry = (shape: string) => `{"t":{"dtype":"F32","data_offsets":[0,0],"shape":${shape}}}`;
const fill = (unit: string, frame: (body: string) => string) => frame(unit.repeat(Math.floor((N - frame('').length) / unit.length))).replace(/,([\]}]+)$/, '$1');

function manyKeys(): string {
  const parts: string[] = [];
  let length = 2;
  for (let i = 0; length + 16 < N; i++) {
    const part = `"${i.toString(36)}":0`;
    parts.push(part);
    length += part.length + 1;
  }
  return `{${parts.join(',')}}`;
}

const depth = Math.floor((N - entry('').length) / 2);
const headers: Record<string, () => string> = {
  'array of zeros': () => fill('0,', (b) => `[${b}]`),
  'array of empty objects': () => fill('{},', (b) => `[${b}]`),
  'array of empty arrays': () => fill('[],', (b) => `[${b}]`),
  'object with distinct keys': manyKeys,
  'shape of a million ones and a zero': () => fill('1,', (b) => entry(`[${b}0]`)),
  'shape nested a half-million deep': () => entry(`${'['.repeat(depth)}${']'.repeat(depth)}`),
  'one long tensor name': () => `{"${'n'.repeat(N - 64)}":{"dtype":"Q"}}`,
  'one long metadata key': () => `{"__metadata__":{"${'k'.repeat(N - 64)}":1}}`,
};

for (const [kind, make] of Object.entries(headers)) {
  const json = new TextEncoder().encode(make());
  if (json.length > N) throw new Error(`${kind}: built ${json.length} bytes, over the ${N}-byte cap`);
  const bytes = new Uint8Array(8 + json.length);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
  bytes.set(json, 8);
  const start = performance.now();
  let message: string | null = null;
  try {
    parseSafetensors(bytes, 'worst.safetensors');
  } catch (e) {
    message = e instanceof SafetensorsError ? e.message : `not a SafetensorsError: ${String(e)}`;
  }
  console.log(JSON.stringify({ kind, bytes: bytes.length, ms: performance.now() - start, message }));
}
