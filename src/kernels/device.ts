/**
 * Gets a WebGPU device from a `GPU` object — Dawn's in Node (node.ts), `navigator.gpu` in the
 * browser (browser.ts) — asking for the adapter's largest buffer and workgroup limits, and wraps
 * it in a Runtime together with the WGSL sources.
 */
import { Runtime, type AdapterReport, type RuntimeOptions } from './runtime.ts';

export const NO_ADAPTER_HELP =
  'No WebGPU adapter was found. lungpath needs a Vulkan driver (Linux) for Dawn: a GPU driver, or ' +
  'on a machine without a GPU the CPU driver lavapipe from Mesa >= 25 (Debian bookworm: ' +
  'mesa-vulkan-drivers from bookworm-backports; older Mesa is rejected by Dawn). `npm run setup` ' +
  'installs it when run as root with apt. In a browser, WebGPU must be enabled (Chrome/Edge 113+, ' +
  'served over http://127.0.0.1 or https).';

/** Limits we raise to the adapter's maximum: big activations need big buffers. */
const RAISED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxStorageBuffersPerShaderStage',
  'maxUniformBufferBindingSize',
] as const;

export interface DeviceOptions extends RuntimeOptions {
  powerPreference?: GPUPowerPreference;
}

export async function createRuntimeFromGpu(
  gpu: GPU,
  shaders: Readonly<Record<string, string>>,
  options: DeviceOptions = {},
): Promise<Runtime> {
  const adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  if (!adapter) throw new Error(NO_ADAPTER_HELP);
  const requiredLimits: Record<string, number> = {};
  for (const name of RAISED_LIMITS) requiredLimits[name] = adapter.limits[name];
  const wanted: GPUFeatureName[] = ['timestamp-query', 'subgroups', 'shader-f16'];
  const requiredFeatures = wanted.filter((f) => adapter.features.has(f));
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures, label: 'lungpath' });
  const info = adapter.info;
  const report: AdapterReport = {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    isFallbackAdapter: Boolean((info as { isFallbackAdapter?: boolean }).isFallbackAdapter),
    features: [...device.features].map(String).sort(),
  };
  const subgroupMinSize = (info as { subgroupMinSize?: number }).subgroupMinSize;
  if (typeof subgroupMinSize === 'number' && subgroupMinSize > 0) report.subgroupMinSize = subgroupMinSize;
  return new Runtime(device, report, shaders, options);
}

/** One line naming the adapter, e.g. `mesa llvmpipe: Mesa 25.0.7 (LLVM 15.0.6)`. */
export function describeAdapter(report: AdapterReport): string {
  const name = report.description || report.device || report.architecture || 'unknown adapter';
  return `${report.vendor || '?'} ${name}${report.isFallbackAdapter ? ' (fallback)' : ''}`;
}
