// Prints the WebGPU adapter Dawn finds (exit 0), or why none was found (exit 1). Used by setup.sh.
import { create, globals } from 'webgpu';
process.env.XDG_RUNTIME_DIR ??= '/tmp';
Object.assign(globalThis, globals);
const gpu = create([]);
const adapter = await gpu.requestAdapter();
if (!adapter) {
  console.error('no WebGPU adapter: Dawn found no usable Vulkan driver (need a GPU driver or Mesa >= 25 lavapipe)');
  process.exit(1);
}
const info = adapter.info ?? {};
console.log(`${info.vendor ?? '?'} / ${info.description || info.device || info.architecture || '?'}`);
process.exit(0);
