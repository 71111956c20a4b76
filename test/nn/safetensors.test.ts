import { describe, expect, it } from 'vitest';
import { parseSafetensors, serializeSafetensors, MAX_HEADER_BYTES } from '../../src/nn/safetensors.ts';

function fileWithHeader(header: unknown, dataBytes = 0): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

describe('safetensors', () => {
  it('round-trips tensors, dtypes and metadata', () => {
    const a = new Float32Array([1, 2.5, -3, 4, 5, 6]);
    const b = new BigInt64Array([7n]);
    const bytes = serializeSafetensors(
      [
        { name: 'a', dtype: 'F32', shape: [2, 3], data: a },
        { name: 'n', dtype: 'I64', shape: [], data: b },
      ],
      { config: '{"x":1}' },
    );
    expect(new DataView(bytes.buffer).getBigUint64(0, true) % 8n).toBe(0n);
    const file = parseSafetensors(bytes);
    expect(file.metadata).toEqual({ config: '{"x":1}' });
    const ea = file.tensors.get('a');
    expect(ea?.shape).toEqual([2, 3]);
    expect([...new Float32Array(Uint8Array.from(ea?.data ?? []).buffer)]).toEqual([...a]);
    expect(file.tensors.get('n')?.dtype).toBe('I64');
  });

  const entry = (over: Record<string, unknown>) => ({ t: { dtype: 'F32', shape: [2], data_offsets: [0, 8], ...over } });
  const cases: [string, Uint8Array, RegExp][] = [
    ['shorter than 8 bytes', new Uint8Array(5), /shorter than the 8-byte header length/],
    ['header past the end', (() => { const f = fileWithHeader({}); new DataView(f.buffer).setBigUint64(0, 1000n, true); return f; })(), /runs past the end/],
    ['huge header length', (() => { const f = fileWithHeader({}); new DataView(f.buffer).setBigUint64(0, BigInt(MAX_HEADER_BYTES) + 1n, true); return f; })(), /exceeds the/],
    ['non-JSON header', fileWithHeader('{not json'), /not valid JSON/],
    ['header not an object', fileWithHeader('[1,2]'), /not a JSON object/],
    ['unknown dtype', fileWithHeader(entry({ dtype: 'Q8' }), 8), /unknown dtype "Q8"/],
    ['bad shape', fileWithHeader(entry({ shape: [-1] }), 8), /shape \[-1\]/],
    ['offsets out of range', fileWithHeader(entry({ data_offsets: [0, 800] }), 8), /lie outside the 8 data bytes/],
    ['shape disagrees with bytes', fileWithHeader(entry({ shape: [3] }), 8), /8 bytes stored, but F32 \[3\] needs 12/],
    ['overlapping tensors', fileWithHeader({ ...entry({}), u: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, 8), /overlap/],
    ['metadata not strings', fileWithHeader({ __metadata__: { a: 1 } }), /__metadata__.a is not a string/],
  ];
  it.each(cases)('rejects a file with %s', (_name, bytes, message) => {
    expect(() => parseSafetensors(bytes, 'bad.safetensors')).toThrow(message);
    expect(() => parseSafetensors(bytes, 'bad.safetensors')).toThrow(/^bad\.safetensors: /);
  });

  it('reads a file written by PyTorch (tools/make-golden.py)', async () => {
    const { readFileSync } = await import('node:fs');
    const file = parseSafetensors(new Uint8Array(readFileSync('test/fixtures/tiny-level1-torch-state.safetensors')));
    expect(file.tensors.get('features.0.weight')?.shape).toEqual([8, 3, 3, 3]);
    expect(file.tensors.get('features.1.num_batches_tracked')?.dtype).toBe('I64');
  });
});
