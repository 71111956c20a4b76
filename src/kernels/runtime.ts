/**
 * The GPU runtime: owns the device, the pipeline cache, the buffer pool, the uniform arena and
 * the command encoder. Kernels declare (kernel.ts); launchers call `dispatch`; nothing is
 * submitted until `flush`, and nothing is read back unless a caller asks (`read`).
 *
 * Platform-neutral: Node (Dawn) and the browser build a Runtime through device.ts.
 */
import type { KernelSpec } from './kernel.ts';
import { KernelChoices } from './kernel_choices.ts';
import { BufferPool, OutOfMemoryError, roundUp, type PoolStats } from './pool.ts';

/** A storage binding: a whole buffer, or a byte range of one (offset a multiple of 256). */
export type Binding = GPUBuffer | { buffer: GPUBuffer; offset?: number; size: number };

export interface DispatchArgs {
  bindings: readonly Binding[];
  uniforms?: ArrayBuffer;
  /** Workgroups in x, y, z; each at most `maxWorkgroupsPerDimension` (see `grid` in dispatch.ts). */
  workgroups: readonly [number, number?, number?];
}

export interface AdapterReport {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
  features: string[];
  /** The adapter's smallest subgroup size, where it tells (adapter.info.subgroupMinSize). */
  subgroupMinSize?: number;
}

export interface RuntimeOptions {
  /**
   * Pretend the device binds at most this many bytes per storage buffer (never more than the
   * device's real limit). Tests use it to exercise the over-the-limit paths on small tensors.
   */
  maxBindingBytes?: number;
  /** A budget for the buffer pool in bytes (`--gpu-memory`, tests): a buffer over it throws an OutOfMemoryError. */
  maxMemoryBytes?: number;
  /** The kernel-version table to use (shared with another runtime on the same adapter); default a new, empty one. */
  kernels?: KernelChoices;
}

/** Thrown when a tensor cannot be bound in one piece and the op cannot split it. */
export class BindingLimitError extends Error {
  constructor(what: string, bytes: number, limit: number) {
    super(
      `${what} is ${formatBytes(bytes)} (${bytes} bytes), over this device's maxStorageBufferBindingSize ` +
        `of ${formatBytes(limit)} (${limit} bytes); use a smaller batch`,
    );
    this.name = 'BindingLimitError';
  }
}

/** The GPU device was lost (driver reset, device destroyed, GPU removed); nothing more can run on it. */
export class DeviceLostError extends Error {
  constructor(readonly reason: string) {
    super(`the GPU device was lost (${reason})`);
    this.name = 'DeviceLostError';
  }
}

/** A kernel's WGSL failed to compile or its pipeline failed validation. */
export class ShaderError extends Error {
  constructor(kernel: string, message: string) {
    super(`kernel '${kernel}': ${message}`);
    this.name = 'ShaderError';
  }
}

const UNIFORM_ARENA_BYTES = 1 << 18;
// GPUBufferUsage is a global only once the platform installed WebGPU; the flag values are fixed by spec.
const STORAGE_USAGE = 0x0080 /* STORAGE */ | 0x0040 /* UNIFORM */ | 0x0004 /* COPY_SRC */ | 0x0008; /* COPY_DST */

export class Runtime {
  readonly pool: BufferPool;
  /** Largest byte size of one storage binding (the device limit, or the test override). */
  readonly maxBindingBytes: number;
  readonly maxWorkgroupsPerDimension: number;
  /** The pool's memory budget in bytes (RuntimeOptions.maxMemoryBytes), null when only the device limits it. */
  readonly maxMemoryBytes: number | null;
  readonly counters = { dispatches: 0, submits: 0, pipelines: 0, uploads: 0, readbacks: 0 };
  /** Which version each multi-version kernel runs per shape (kernel_choices.ts); empty = heuristic. */
  readonly kernels: KernelChoices;

  private pipelines = new Map<string, { pipeline: GPUComputePipeline; layout: GPUBindGroupLayout }>();
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private uniformArena: GPUBuffer;
  private uniformStaging = new Uint8Array(UNIFORM_ARENA_BYTES);
  private uniformUsed = 0;
  private uniformAlign: number;
  private pendingStaging: GPUBuffer[] = [];
  private pendingChecks: Promise<void>[] = [];
  private failures: Error[] = [];
  private lostReason: string | null = null;

  constructor(
    readonly device: GPUDevice,
    readonly adapter: AdapterReport,
    private readonly shaders: Readonly<Record<string, string>>,
    options: RuntimeOptions = {},
  ) {
    this.maxMemoryBytes = options.maxMemoryBytes ?? null;
    this.pool = new BufferPool(device, {
      maxBufferBytes: device.limits.maxBufferSize,
      memoryBytes: options.maxMemoryBytes,
      create: (descriptor) => this.createWatchedBuffer(descriptor),
      beforeTrim: () => this.flush(),
    });
    this.kernels = options.kernels ?? new KernelChoices();
    const deviceLimit = device.limits.maxStorageBufferBindingSize;
    this.maxBindingBytes = Math.min(deviceLimit, options.maxBindingBytes ?? deviceLimit);
    this.maxWorkgroupsPerDimension = device.limits.maxComputeWorkgroupsPerDimension;
    this.uniformAlign = device.limits.minUniformBufferOffsetAlignment;
    this.uniformArena = device.createBuffer({
      size: UNIFORM_ARENA_BYTES,
      usage: 0x0040 /* UNIFORM */ | 0x0008 /* COPY_DST */,
      label: 'uniform-arena',
    });
    device.addEventListener?.('uncapturederror', (event) => {
      this.failures.push(new Error(`WebGPU error: ${(event as GPUUncapturedErrorEvent).error.message}`));
    });
    void device.lost.then((info) => {
      this.lostReason = `${info.reason}: ${info.message}`;
    });
  }

  // ---- buffers -------------------------------------------------------------------------------

  /** A pooled storage buffer of `bytes` (contents undefined). Release with `release`. */
  alloc(bytes: number, label?: string): GPUBuffer {
    return this.pool.acquire(bytes, STORAGE_USAGE, label);
  }

  release(buffer: GPUBuffer): void {
    this.pool.release(buffer);
  }

  /** A pooled storage buffer holding `data`; ordered with the dispatches recorded before it. */
  upload(data: ArrayBufferView, label?: string): GPUBuffer {
    const buffer = this.alloc(data.byteLength, label);
    this.write(buffer, data);
    return buffer;
  }

  /** Writes `data` into `buffer` at `offset`, in order with the commands already recorded. */
  write(buffer: GPUBuffer, data: ArrayBufferView, offset = 0): void {
    const bytes = roundUp(data.byteLength, 4);
    if (bytes === 0) return;
    const staging = this.device.createBuffer({ size: bytes, usage: 0x0004 /* COPY_SRC */, mappedAtCreation: true });
    new Uint8Array(staging.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    staging.unmap();
    this.endPass();
    this.getEncoder().copyBufferToBuffer(staging, 0, buffer, offset, bytes);
    this.pendingStaging.push(staging);
    this.counters.uploads++;
  }

  /** Records a buffer-to-buffer copy. */
  copy(src: GPUBuffer, dst: GPUBuffer, bytes: number, srcOffset = 0, dstOffset = 0): void {
    this.endPass();
    this.getEncoder().copyBufferToBuffer(src, srcOffset, dst, dstOffset, roundUp(bytes, 4));
  }

  /** Submits what is recorded, then reads `bytes` of `buffer` back. The only way data leaves the GPU. */
  async read(buffer: GPUBuffer, bytes = buffer.size, offset = 0): Promise<ArrayBuffer> {
    return (await this.readMany([{ buffer, bytes, offset }]))[0] as ArrayBuffer;
  }

  /** Several reads in one submit and one mapping (a training step reads loss, log-probabilities and flags). */
  async readMany(parts: readonly { buffer: GPUBuffer; bytes?: number; offset?: number }[]): Promise<ArrayBuffer[]> {
    const sizes = parts.map((r) => r.bytes ?? r.buffer.size);
    const starts: number[] = [];
    let total = 0;
    for (const size of sizes) {
      starts.push(total);
      total += roundUp(size, 4);
    }
    const staging = this.device.createBuffer({ size: Math.max(total, 4), usage: 0x0001 /* MAP_READ */ | 0x0008 /* COPY_DST */ });
    this.endPass();
    const encoder = this.getEncoder();
    parts.forEach((r, i) => encoder.copyBufferToBuffer(r.buffer, r.offset ?? 0, staging, starts[i] as number, roundUp(sizes[i] as number, 4)));
    this.flush();
    this.counters.readbacks++;
    try {
      await staging.mapAsync(0x0001 /* READ */).catch(async (e: unknown) => {
        await this.throwIfLost();
        throw e;
      });
      await this.throwIfFailed();
      const mapped = staging.getMappedRange();
      return sizes.map((size, i) => mapped.slice(starts[i] as number, (starts[i] as number) + size));
    } finally {
      staging.destroy();
    }
  }

  async readF32(buffer: GPUBuffer, length: number, offsetElements = 0): Promise<Float32Array> {
    return new Float32Array(await this.read(buffer, length * 4, offsetElements * 4));
  }

  async readU32(buffer: GPUBuffer, length: number, offsetElements = 0): Promise<Uint32Array> {
    return new Uint32Array(await this.read(buffer, length * 4, offsetElements * 4));
  }

  /** Throws a BindingLimitError naming `what` unless `bytes` fits one storage binding. */
  assertBindable(what: string, bytes: number): void {
    if (bytes > this.maxBindingBytes) throw new BindingLimitError(what, bytes, this.maxBindingBytes);
  }

  // ---- dispatch ------------------------------------------------------------------------------

  /** Records one dispatch of `kernel`. Nothing runs until `flush` (or a `read`). */
  dispatch(kernel: Readonly<KernelSpec>, args: DispatchArgs): void {
    const [x, y = 1, z = 1] = args.workgroups;
    for (const n of [x, y, z]) {
      if (!Number.isInteger(n) || n < 0 || n > this.maxWorkgroupsPerDimension) {
        throw new RangeError(`kernel '${kernel.name}': dispatch of ${x}×${y}×${z} workgroups exceeds ${this.maxWorkgroupsPerDimension} per dimension`);
      }
    }
    if (x * y * z === 0) return;
    if (args.bindings.length !== kernel.bindings.length) {
      throw new Error(`kernel '${kernel.name}': ${args.bindings.length} bindings given, ${kernel.bindings.length} declared`);
    }
    if (kernel.uniforms !== (args.uniforms !== undefined)) {
      throw new Error(`kernel '${kernel.name}': uniforms ${kernel.uniforms ? 'missing' : 'given but not declared'}`);
    }
    const { pipeline, layout } = this.getPipeline(kernel);
    const entries: GPUBindGroupEntry[] = [];
    if (args.uniforms) entries.push({ binding: 0, resource: this.pushUniforms(args.uniforms) });
    args.bindings.forEach((binding, i) => {
      const resource = 'buffer' in binding ? binding : { buffer: binding, size: binding.size };
      const limit = kernel.bindings[i] === 'uniform' ? this.device.limits.maxUniformBufferBindingSize : this.maxBindingBytes;
      if (resource.size > limit) {
        throw new BindingLimitError(`kernel '${kernel.name}' binding ${i + 1} ('${resource.buffer.label}')`, resource.size, limit);
      }
      entries.push({ binding: i + 1, resource });
    });
    assertNoWritableAlias(kernel, entries);
    const bindGroup = this.device.createBindGroup({ layout, entries });
    const pass = this.getPass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    this.counters.dispatches++;
  }

  /** Submits everything recorded so far. Cheap when nothing is recorded. */
  flush(): void {
    this.endPass();
    if (!this.encoder) return;
    if (this.uniformUsed > 0) {
      this.device.queue.writeBuffer(this.uniformArena, 0, this.uniformStaging, 0, this.uniformUsed);
      this.uniformUsed = 0;
    }
    this.device.pushErrorScope('validation');
    this.device.queue.submit([this.encoder.finish()]);
    const check = this.device.popErrorScope().then((error) => {
      if (error) this.failures.push(new Error(`WebGPU validation error: ${error.message}`));
    });
    this.pendingChecks.push(check);
    this.encoder = null;
    this.counters.submits++;
    const staging = this.pendingStaging;
    this.pendingStaging = [];
    if (staging.length > 0) {
      void this.device.queue.onSubmittedWorkDone().then(() => staging.forEach((b) => b.destroy()));
    }
  }

  /** Submits and waits until the GPU has finished; throws any shader or validation error. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    await this.throwIfFailed();
  }

  /** Compiles a kernel now and throws a ShaderError if its WGSL is invalid. */
  async prepare(kernel: Readonly<KernelSpec>): Promise<void> {
    this.getPipeline(kernel);
    await this.throwIfFailed();
  }

  poolStats(): PoolStats {
    return this.pool.snapshot();
  }

  /** Full WGSL text of a kernel, as compiled (includes and defines applied). */
  source(kernel: Readonly<KernelSpec>): string {
    const parts = [...(kernel.include ?? []), kernel.shader].map((name) => {
      const text = this.shaders[name];
      if (text === undefined) throw new Error(`kernel '${kernel.name}': no shader 'wgsl/${name}.wgsl' was loaded`);
      return text;
    });
    // WGSL wants its `enable` directives before any declaration, includes' included.
    const directive = /^enable [\w, ]+;$/gm;
    const joined = parts.join('\n');
    let text = [...new Set(joined.match(directive) ?? []), joined.replace(directive, '')].join('\n');
    for (const [key, value] of Object.entries(kernel.defines ?? {})) text = text.replaceAll(`{{${key}}}`, String(value));
    const leftover = /\{\{(\w+)\}\}/.exec(text);
    if (leftover) throw new Error(`kernel '${kernel.name}': define {{${leftover[1]}}} has no value`);
    return text;
  }

  destroy(): void {
    this.pool.trim();
    this.uniformArena.destroy();
    this.device.destroy();
  }

  // ---- internals -----------------------------------------------------------------------------

  private async throwIfFailed(): Promise<void> {
    const checks = this.pendingChecks;
    this.pendingChecks = [];
    await Promise.all(checks);
    if (this.lostReason) throw new DeviceLostError(this.lostReason);
    const failures = this.failures.splice(0);
    // A shader error explains the validation errors that follow from it: report it first.
    const first = failures.find((e) => e instanceof ShaderError) ?? failures[0];
    if (first) throw first;
  }

  /** After a failed map: waits briefly for `device.lost` and throws a DeviceLostError if it fired. */
  private async throwIfLost(): Promise<void> {
    await Promise.race([this.device.lost, new Promise((resolve) => setTimeout(resolve, 1000))]);
    await Promise.resolve();
    if (this.lostReason) throw new DeviceLostError(this.lostReason);
  }

  /** A pool buffer, with the driver's out-of-memory error (reported later) turned into an OutOfMemoryError. */
  private createWatchedBuffer(descriptor: GPUBufferDescriptor): GPUBuffer {
    this.device.pushErrorScope('out-of-memory');
    const buffer = this.device.createBuffer(descriptor);
    const held = this.pool.snapshot().allocatedBytes;
    this.pendingChecks.push(
      this.device.popErrorScope().then((error) => {
        if (error) this.failures.unshift(new OutOfMemoryError(descriptor.label ?? '', descriptor.size, held, 'device memory', null));
      }),
    );
    return buffer;
  }

  private getPipeline(kernel: Readonly<KernelSpec>): { pipeline: GPUComputePipeline; layout: GPUBindGroupLayout } {
    const code = this.source(kernel);
    const constants = kernel.constants ?? {};
    const key = `${kernel.entryPoint ?? 'main'}|${JSON.stringify(constants)}|${kernel.uniforms}|${kernel.bindings.join(',')}|${code}`;
    const cached = this.pipelines.get(key);
    if (cached) return cached;

    const entries: GPUBindGroupLayoutEntry[] = [];
    if (kernel.uniforms) entries.push({ binding: 0, visibility: 4 /* COMPUTE */, buffer: { type: 'uniform' } });
    kernel.bindings.forEach((access, i) => {
      const type = access === 'read' ? 'read-only-storage' : access === 'write' ? 'storage' : 'uniform';
      entries.push({ binding: i + 1, visibility: 4, buffer: { type } });
    });
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ code, label: kernel.name });
    const layout = this.device.createBindGroupLayout({ entries, label: kernel.name });
    const pipeline = this.device.createComputePipeline({
      label: kernel.name,
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: kernel.entryPoint ?? 'main', constants },
    });
    const check = this.device.popErrorScope().then(async (error) => {
      if (!error) return;
      const info = await module.getCompilationInfo();
      const messages = info.messages
        .filter((m) => m.type === 'error')
        .map((m) => `wgsl/${kernel.shader}.wgsl (as compiled) ${m.lineNum}:${m.linePos}: ${m.message}`);
      this.failures.push(new ShaderError(kernel.name, messages.length ? messages.join('\n') : error.message));
    });
    this.pendingChecks.push(check);
    const entry = { pipeline, layout };
    this.pipelines.set(key, entry);
    this.counters.pipelines++;
    return entry;
  }

  private pushUniforms(data: ArrayBuffer): GPUBufferBinding {
    const size = roundUp(Math.max(data.byteLength, 16), 16);
    if (size > 1024) throw new Error(`uniform block of ${data.byteLength} bytes is larger than 1 KiB`);
    if (this.uniformUsed + size > UNIFORM_ARENA_BYTES) this.flush();
    const offset = this.uniformUsed;
    this.uniformStaging.fill(0, offset, offset + size);
    this.uniformStaging.set(new Uint8Array(data), offset);
    this.uniformUsed = roundUp(offset + size, this.uniformAlign);
    return { buffer: this.uniformArena, offset, size };
  }

  private getEncoder(): GPUCommandEncoder {
    this.encoder ??= this.device.createCommandEncoder();
    return this.encoder;
  }

  private getPass(): GPUComputePassEncoder {
    this.pass ??= this.getEncoder().beginComputePass();
    return this.pass;
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = null;
  }
}

/** WebGPU forbids a buffer range bound writable and bound again in the same dispatch. */
function assertNoWritableAlias(kernel: Readonly<KernelSpec>, entries: GPUBindGroupEntry[]): void {
  const storage = entries.filter((e) => e.binding > 0 || !kernel.uniforms).map((e) => e.resource as GPUBufferBinding);
  for (let i = 0; i < storage.length; i++) {
    for (let j = i + 1; j < storage.length; j++) {
      const a = storage[i] as GPUBufferBinding;
      const b = storage[j] as GPUBufferBinding;
      if (a.buffer !== b.buffer) continue;
      const writable = kernel.bindings[i] === 'write' || kernel.bindings[j] === 'write';
      const aStart = a.offset ?? 0;
      const bStart = b.offset ?? 0;
      const overlap = aStart < bStart + (b.size ?? b.buffer.size) && bStart < aStart + (a.size ?? a.buffer.size);
      if (writable && overlap) {
        throw new Error(`kernel '${kernel.name}': bindings ${i + 1} and ${j + 1} are the same buffer ('${a.buffer.label}'), one of them writable`);
      }
    }
  }
}

export function formatBytes(bytes: number): string {
  if (bytes >= 1 << 30) return `${(bytes / (1 << 30)).toFixed(1)} GiB`;
  if (bytes >= 1 << 20) return `${(bytes / (1 << 20)).toFixed(1)} MiB`;
  if (bytes >= 1 << 10) return `${(bytes / (1 << 10)).toFixed(1)} KiB`;
  return `${bytes} B`;
}
