// conv2d dW for 3×3 kernels, stride 1, pad 1, on CPU-like adapters with subgroups (lavapipe):
// lanes over input channels, dy shared between the lanes by subgroupBroadcast.
//   dW[o,c,ky,kx] = Σ_n Σ_i Σ_j dy[n,o,i,j] · x[n,c,i+ky−1,j+kx−1]   (zero outside x)
// A workgroup is 8 lanes (one subgroup: the launcher requires subgroups of at least 8). It owns
// input channels ci0 … ci0 + 7 (lane l: ci0 + l) and output channels co0 … co0 + CO − 1
// (CO = {{CO}}); each lane keeps the CO × 9 weights of its input channel in registers. A task is a
// strip of 4 consecutive columns over a block of ROWS = {{ROWS}} rows of one image; the lanes walk
// the same tasks, row by row. Per row each lane loads, for its own input channel, the row of x
// below the strip (6 values; the two rows above stay in registers: a sliding window), and the dy of
// the strip for output channels co0 + l, co0 + 8 + l, … (CO / 8 loads of 4 values); it then takes
// every output channel's dy from the lane that loaded it by subgroupBroadcast with a constant lane
// (a permute and a broadcast on AVX2) and does CO × 9 × 4 FMAs. All lanes read the same pixels, so
// every bounds check is uniform across the workgroup; lanes past cIn and channels past cOut
// compute on clamped reads and are never stored. Loads: XT = {{XT}} (vec4 when W is a multiple of 4).
// Why on lavapipe (Mesa 25.0): a storage load whose address differs between lanes runs as a loop
// over the 8 lanes with a branch each. conv2d_dw_3x3 (lanes over pixels, 8 output channels each)
// issues 11 such loads per 72 FMAs; here CO / 8 + 3 of them feed 36·CO FMAs per lane.
// Stream s (grid z) sums tasks [s·per_stream, (s+1)·per_stream) in order and writes its own
// partial dW at partial[s·weights + …]; conv2d_dw_reduce adds the streams in a fixed order. No
// atomics: the same inputs give the same bits.
enable subgroups;

struct Params {
  n: u32,           // batch items in this chunk
  c_in: u32,
  h: u32,
  w: u32,
  c_out: u32,
  x_base: u32,      // element offset of the chunk's first item in the x binding
  dy_base: u32,     // same for dy
  strips: u32,      // ceil(w / 4)
  row_blocks: u32,  // ceil(h / ROWS)
  tasks: u32,       // n · row_blocks · strips
  per_stream: u32,  // tasks per stream
  weights: u32,     // c_out · c_in · 9: the stride between partials
  ci_blocks: u32,   // ceil(c_in / 8)
  co_blocks: u32,   // ceil(c_out / CO)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<{{XT}}>;
@group(0) @binding(2) var<storage, read> dy: array<{{XT}}>;
@group(0) @binding(3) var<storage, read_write> partial: array<f32>;

const CO: u32 = {{CO}}u;
const ROWS: u32 = {{ROWS}}u;

// One row of x around a strip: column j0 − 1 (l), j0 … j0 + 3 (a), j0 + 4 (r); zero outside x.
struct Six { l: f32, a: vec4<f32>, r: f32 }

{{LOADS}}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(subgroup_invocation_id) lane: u32) {
  let block = wid.x + wid.y * nwg.x;
  if (block >= p.ci_blocks * p.co_blocks) { return; }
  let ci = (block % p.ci_blocks) * 8u + lane;
  let co0 = (block / p.ci_blocks) * CO;
  let hw = p.h * p.w;
  let t0 = wid.z * p.per_stream;
  let t1 = min(t0 + p.per_stream, p.tasks);
  {{ACC_DECL}}
  for (var t = t0; t < t1; t++) {
    let j0 = (t % p.strips) * 4u;
    let rest = t / p.strips;
    let i0 = (rest % p.row_blocks) * ROWS;
    let n = rest / p.row_blocks;
    let i1 = min(i0 + ROWS, p.h);
    let xp = p.x_base + (n * p.c_in + min(ci, p.c_in - 1u)) * hw;
    let dyn = p.dy_base + n * p.c_out * hw;
    {{DY_PLANES}}
    var r0 = xRow(xp, i32(i0) - 1, j0);
    var r1 = xRow(xp, i32(i0), j0);
    for (var i = i0; i < i1; i++) {
      let r2 = xRow(xp, i32(i) + 1, j0);
      {{DY_LOAD}}
      // x under tap (ky, kx) for the strip's 4 pixels.
      let s00 = vec4(r0.l, r0.a.xyz); let s01 = r0.a; let s02 = vec4(r0.a.yzw, r0.r);
      let s10 = vec4(r1.l, r1.a.xyz); let s11 = r1.a; let s12 = vec4(r1.a.yzw, r1.r);
      let s20 = vec4(r2.l, r2.a.xyz); let s21 = r2.a; let s22 = vec4(r2.a.yzw, r2.r);
      {{ACC_FMA}}
      r0 = r1;
      r1 = r2;
    }
  }
  if (ci >= p.c_in) { return; }
  // The stores go through an array and a loop the compiler cannot unroll (its bound is a uniform):
  // CO × 9 unrolled lane-divergent stores would make the shader slow to compile on lavapipe.
  {{ACC_COPY}}
  let base = wid.z * p.weights + ci * 9u;
  for (var k = 0u; k < min(CO, p.c_out - co0); k++) {
    let o = base + (co0 + k) * p.c_in * 9u;
    for (var q = 0u; q < 9u; q++) { partial[o + q] = acc[k * 9u + q]; }
  }
}
