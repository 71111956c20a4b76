/**
 * The GPU runtime: owns the device, the pipeline cache, the buffer pool, the uniform arena and
 * the command encoder. Kernels declare (kernel.ts); launchers call `dispatch`; nothing is
 * submitted until `flush`, and nothing is read back unless a caller asks (`read`).
 *
 * Platform-neutral: Node (Dawn) and the browser build a Runtime through device.ts.
 */
import { BindGroupCache } from './bind_group_cache.ts';
import type { KernelSpec, UniformBlock } from './kernel.ts';
import { KernelChoices } from './kernel_choices.ts';
import { BufferPool, OutOfMemoryError, roundUp, type PoolStats } from './pool.ts';
import { DispatchProfiler, type DispatchTiming } from './profiler.ts';
import { StagingPool } from './staging.ts';

/** A storage binding: a whole buffer, or a byte range of one (offset a multiple of 256). */
export type Binding = GPUBuffer | { buffer: GPUBuffer; offset?: number; size: number };

export interface DispatchArgs {
  bindings: readonly Binding[];
  /** The uniform block: its bytes, or a `Uniforms` (any UniformBlock), which is written into the arena without a copy. */
  uniforms?: ArrayBuffer | UniformBlock;
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
/** Bind groups kept for reuse; past this many the cache starts again (a loop with fixed shapes needs a few hundred). */
const BIND_GROUP_CACHE_SIZE = 4096;

interface Pipeline {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  /** Distinguishes layouts in bind-group keys. */
  layoutId: number;
}
// GPUBufferUsage is a global only once the platform installed WebGPU; the flag values are fixed by spec.
const STORAGE_USAGE = 0x0080 /* STORAGE */ | 0x0040 /* UNIFORM */ | 0x0004 /* COPY_SRC */ | 0x0008; /* COPY_DST */

export class Runtime {
  readonly pool: BufferPool;
  /** Largest byte size of one storage binding (the device limit, or the test override). */
  readonly maxBindingBytes: number;
  readonly maxWorkgroupsPerDimension: number;
  /** The pool's memory budget in bytes (RuntimeOptions.maxMemoryBytes), null when only the device limits it. */
  readonly maxMemoryBytes: number | null;
  readonly counters = { dispatches: 0, submits: 0, pipelines: 0, uploads: 0, readbacks: 0, bindGroups: 0 };
  /** Which version each multi-version kernel runs per shape (kernel_choices.ts); empty = heuristic. */
  readonly kernels: KernelChoices;

  /** Pipelines by kernel declaration (the hot path: one WeakMap lookup) … */
  private pipelinesByKernel = new WeakMap<Readonly<KernelSpec>, Pipeline>();
  /** … and by source and constants, so two declarations of the same kernel share one pipeline. */
  private pipelines = new Map<string, Pipeline>();
  /** Bind-group layouts by their entries: kernels with the same bindings share one, and so their bind groups. */
  private layouts = new Map<string, { layout: GPUBindGroupLayout; id: number }>();
  /** Bind groups by layout and bound ranges (the uniform block's offset is dynamic, so not part of the key). */
  private bindGroups = new BindGroupCache<GPUBindGroup>();
  /** Ids of buffers not from the pool (the pool's buffers use its ids, ≥ 0): −1, −2, … */
  private foreignIds = new WeakMap<GPUBuffer, number>();
  private nextForeignId = -1;
  private staging: StagingPool;
  private dynamicOffset = new Uint32Array(1);
  /** Per-dispatch timestamps while a profile runs (startProfile). */
  private profiler: DispatchProfiler | null = null;
  /** The pipeline last set in the open pass (setting it again is skipped). */
  private passPipeline: GPUComputePipeline | null = null;
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private uniformArena: GPUBuffer;
  private uniformStaging = new Uint8Array(UNIFORM_ARENA_BYTES);
  private uniformWords = new Uint32Array(this.uniformStaging.buffer);
  private uniformUsed = 0;
  private uniformAlign: number;
  private pendingUploads: GPUBuffer[] = [];
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
    this.staging = new StagingPool(device);
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
    const staging = this.staging.acquireUpload(bytes);
    new Uint8Array(staging.getMappedRange(0, bytes)).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    staging.unmap();
    this.endPass();
    this.getEncoder().copyBufferToBuffer(staging, 0, buffer, offset, bytes);
    this.pendingUploads.push(staging);
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
    const staging = this.staging.acquireReadback(Math.max(total, 4));
    this.endPass();
    const encoder = this.getEncoder();
    parts.forEach((r, i) => encoder.copyBufferToBuffer(r.buffer, r.offset ?? 0, staging, starts[i] as number, roundUp(sizes[i] as number, 4)));
    this.flush();
    this.counters.readbacks++;
    let ok = false;
    try {
      await staging.mapAsync(0x0001 /* READ */, 0, Math.max(total, 4)).catch(async (e: unknown) => {
        await this.throwIfLost();
        throw e;
      });
      await this.throwIfFailed();
      const mapped = staging.getMappedRange(0, Math.max(total, 4));
      const out = sizes.map((size, i) => mapped.slice(starts[i] as number, (starts[i] as number) + size));
      ok = true;
      return out;
    } finally {
      this.staging.releaseReadback(staging, ok);
    }
  }

  async readF32(buffer: GPUBuffer, length: number, offsetElements = 0): Promise<Float32Array> {
    return new Float32Array(await this.read(buffer, length * 4, offsetElements * 4));
  }

  async readU32(buffer: GPUBuffer, length: number, offsetElements = 0): Promise<Uint32Array> {
    return new Uint32Array(await this.read(buffer, length * 4, offsetElements * 4));
  }

  /** The byte size of `buffer`, from the pool's record when it is a pool buffer (reading `GPUBuffer.size` calls into Dawn: ~0.1 µs). */
  sizeOf(buffer: GPUBuffer): number {
    return this.pool.sizeOf(buffer) ?? buffer.size;
  }

  /** Throws a BindingLimitError naming `what` unless `bytes` fits one storage binding. */
  assertBindable(what: string, bytes: number): void {
    if (bytes > this.maxBindingBytes) throw new BindingLimitError(what, bytes, this.maxBindingBytes);
  }

  // ---- dispatch ------------------------------------------------------------------------------

  /** Records one dispatch of `kernel`. Nothing runs until `flush` (or a `read`). */
  dispatch(kernel: Readonly<KernelSpec>, args: DispatchArgs): void {
    const [x, y = 1, z = 1] = args.workgroups;
    if (!this.validGroupCount(x) || !this.validGroupCount(y) || !this.validGroupCount(z)) {
      throw new RangeError(`kernel '${kernel.name}': dispatch of ${x}×${y}×${z} workgroups exceeds ${this.maxWorkgroupsPerDimension} per dimension`);
    }
    if (x * y * z === 0) return;
    if (args.bindings.length !== kernel.bindings.length) {
      throw new Error(`kernel '${kernel.name}': ${args.bindings.length} bindings given, ${kernel.bindings.length} declared`);
    }
    if (kernel.uniforms !== (args.uniforms !== undefined)) {
      throw new Error(`kernel '${kernel.name}': uniforms ${kernel.uniforms ? 'missing' : 'given but not declared'}`);
    }
    const entry = this.getPipeline(kernel);
    const uniform = args.uniforms ? this.pushUniforms(args.uniforms) : null;
    const bindGroup = this.getBindGroup(kernel, entry, args.bindings, uniform?.size ?? 0);
    const pass = this.profiler ? this.profiledPass(kernel, args.bindings, [x, y, z]) : this.getPass();
    if (this.passPipeline !== entry.pipeline) pass.setPipeline(entry.pipeline);
    this.passPipeline = entry.pipeline;
    if (uniform) {
      // The typed-array form: Dawn's binding walks a plain array through its iterator, which costs more than the rest of the dispatch.
      this.dynamicOffset[0] = uniform.offset;
      pass.setBindGroup(0, bindGroup, this.dynamicOffset, 0, 1);
    }
    else pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    if (this.profiler) this.endPass();
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
    this.profiler?.resolve(this.encoder);
    this.device.pushErrorScope('validation');
    this.device.queue.submit([this.encoder.finish()]);
    const check = this.device.popErrorScope().then((error) => {
      if (error) this.failures.push(new Error(`WebGPU validation error: ${error.message}`));
    });
    this.pendingChecks.push(check);
    this.encoder = null;
    this.counters.submits++;
    const uploads = this.pendingUploads;
    this.pendingUploads = [];
    if (uploads.length > 0) {
      void this.device.queue.onSubmittedWorkDone().then(
        () => this.staging.recycleUploads(uploads),
        () => uploads.forEach((b) => b.destroy()),
      );
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

  /**
   * From now on every dispatch is timed on the GPU (its own pass with timestamp queries) until
   * `stopProfile`; see profiler.ts. Throws when the device has no 'timestamp-query'.
   */
  startProfile(): void {
    this.flush();
    this.profiler = new DispatchProfiler(this.device);
  }

  /** Ends a profile: submits, waits, and returns each dispatch since `startProfile` with its GPU time. */
  async stopProfile(): Promise<DispatchTiming[]> {
    const profiler = this.profiler;
    if (!profiler) throw new Error('stopProfile: no profile was started');
    this.flush();
    this.profiler = null;
    try {
      return profiler.timings(await this.readMany(profiler.buffers()));
    } finally {
      profiler.destroy();
    }
  }

  /**
   * GPU objects this runtime keeps: compiled pipelines, bind-group layouts, cached bind groups (at
   * most BIND_GROUP_CACHE_SIZE), and the free staging bytes. A loop that keeps adding to the first
   * two is leaking (test/soak/ checks them round after round).
   */
  heldObjects(): { pipelines: number; layouts: number; bindGroups: number; stagingFreeBytes: number } {
    return { pipelines: this.pipelines.size, layouts: this.layouts.size, bindGroups: this.bindGroups.size, stagingFreeBytes: this.staging.freeBytes() };
  }

  /** Staging buffers created so far for uploads and readbacks (a steady loop stops creating them). */
  stagingCreated(): { upload: number; readback: number } {
    return { ...this.staging.created };
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
    this.bindGroups.clear();
    this.staging.destroy();
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

  /**
   * The pipeline of a kernel declaration: found by the declaration itself (declarations are made
   * once, at module level), else by its source text and constants (a copy of a declaration, a test's
   * variant), else compiled.
   */
  private getPipeline(kernel: Readonly<KernelSpec>): Pipeline {
    const known = this.pipelinesByKernel.get(kernel);
    if (known) return known;
    const code = this.source(kernel);
    const constants = kernel.constants ?? {};
    const key = `${kernel.entryPoint ?? 'main'}|${JSON.stringify(constants)}|${kernel.uniforms}|${kernel.bindings.join(',')}|${code}`;
    const cached = this.pipelines.get(key);
    if (cached) {
      this.pipelinesByKernel.set(kernel, cached);
      return cached;
    }

    const { layout, id: layoutId } = this.getLayout(kernel);
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ code, label: kernel.name });
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
    const entry = { pipeline, layout, layoutId };
    this.pipelines.set(key, entry);
    this.pipelinesByKernel.set(kernel, entry);
    this.counters.pipelines++;
    return entry;
  }

  /** The bind-group layout for a kernel's bindings; the uniform block (binding 0) takes a dynamic offset into the arena. */
  private getLayout(kernel: Readonly<KernelSpec>): { layout: GPUBindGroupLayout; id: number } {
    const key = `${kernel.uniforms}|${kernel.bindings.join(',')}`;
    const known = this.layouts.get(key);
    if (known) return known;
    const entries: GPUBindGroupLayoutEntry[] = [];
    if (kernel.uniforms) entries.push({ binding: 0, visibility: 4 /* COMPUTE */, buffer: { type: 'uniform', hasDynamicOffset: true } });
    kernel.bindings.forEach((access, i) => {
      const type = access === 'read' ? 'read-only-storage' : access === 'write' ? 'storage' : 'uniform';
      entries.push({ binding: i + 1, visibility: 4, buffer: { type } });
    });
    const made = { layout: this.device.createBindGroupLayout({ entries, label: key }), id: this.layouts.size + 1 };
    this.layouts.set(key, made);
    return made;
  }

  /** A number naming `buffer` for as long as this runtime lives, never reused. */
  private bufferId(buffer: GPUBuffer): number {
    const pooled = this.pool.idOf(buffer);
    if (pooled !== undefined) return pooled;
    let id = this.foreignIds.get(buffer);
    if (id === undefined) {
      id = this.nextForeignId--;
      this.foreignIds.set(buffer, id);
    }
    return id;
  }

  /**
   * The bind group for these buffers and ranges under the kernel's layout: reused when the same
   * ranges were bound before (a training loop binds the same pooled buffers step after step), else
   * checked (binding limits, writable aliasing) and created. Buffer ids are never reused, so an entry
   * naming a destroyed buffer is simply never found again.
   */
  private getBindGroup(kernel: Readonly<KernelSpec>, entry: Pipeline, bindings: readonly Binding[], uniformSize: number): GPUBindGroup {
    const key = this.bindGroups;
    key.begin();
    key.push(entry.layoutId);
    key.push(uniformSize);
    for (let i = 0; i < bindings.length; i++) {
      const binding = bindings[i] as Binding;
      const range = 'buffer' in binding;
      key.push(this.bufferId(range ? binding.buffer : binding));
      key.push(range ? (binding.offset ?? 0) : -1); // −1: the whole buffer
      key.push(range ? binding.size : -1);
    }
    const cached = key.find();
    if (cached) return cached;
    const entries: GPUBindGroupEntry[] = [];
    if (kernel.uniforms) entries.push({ binding: 0, resource: { buffer: this.uniformArena, offset: 0, size: uniformSize } });
    bindings.forEach((binding, i) => {
      const resource = 'buffer' in binding ? binding : { buffer: binding, size: binding.size };
      const limit = kernel.bindings[i] === 'uniform' ? this.device.limits.maxUniformBufferBindingSize : this.maxBindingBytes;
      if (resource.size > limit) {
        throw new BindingLimitError(`kernel '${kernel.name}' binding ${i + 1} ('${resource.buffer.label}')`, resource.size, limit);
      }
      entries.push({ binding: i + 1, resource });
    });
    assertNoWritableAlias(kernel, entries);
    const group = this.device.createBindGroup({ layout: entry.layout, entries });
    if (this.bindGroups.size >= BIND_GROUP_CACHE_SIZE) this.bindGroups.clear();
    this.bindGroups.add(group);
    this.counters.bindGroups++;
    return group;
  }

  /** Appends a uniform block to the arena (zero-padded to 16 bytes); its offset and size there. */
  private pushUniforms(data: ArrayBuffer | UniformBlock): { offset: number; size: number } {
    const size = roundUp(Math.max(data.byteLength, 16), 16);
    if (size > 1024) throw new Error(`uniform block of ${data.byteLength} bytes is larger than 1 KiB`);
    if (this.uniformUsed + size > UNIFORM_ARENA_BYTES) this.flush();
    const offset = this.uniformUsed;
    // Recognised by its method, not by class: a second copy of kernel.ts (two bundles) makes another class.
    if ('writeTo' in data) data.writeTo(this.uniformWords, offset / 4);
    else {
      this.uniformStaging.fill(0, offset, offset + size);
      this.uniformStaging.set(new Uint8Array(data), offset);
    }
    this.uniformUsed = roundUp(offset + size, this.uniformAlign);
    return { offset, size };
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
    this.passPipeline = null;
  }

  private profiledPass(kernel: Readonly<KernelSpec>, bindings: readonly Binding[], groups: [number, number, number]): GPUComputePassEncoder {
    this.endPass();
    const sizes = bindings.map((b) => b.size);
    this.pass = this.getEncoder().beginComputePass({ timestampWrites: (this.profiler as DispatchProfiler).next(kernel.name, sizes, groups) });
    return this.pass;
  }

  private validGroupCount(n: number): boolean {
    return Number.isInteger(n) && n >= 0 && n <= this.maxWorkgroupsPerDimension;
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
