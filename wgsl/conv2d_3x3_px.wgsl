// conv2d 3×3, stride 1, pad 1 for CPU-like adapters (lavapipe), lanes over pixels: forward, and the
// data gradient (dy convolved with Wᵀ flipped, packed that way). A workgroup is 8 lanes (one SIMD
// row of lavapipe's AVX2 code); lane l takes pixel group 8·wid + l — 8 consecutive output pixels
// of one row — and computes them for the dispatch's whole tile of RN = {{RN}} output channels, so
// each lane keeps 8 × RN accumulators. Per input channel and kernel row a lane reads the 10 source
// values its 8 pixels need (XT = {{XT}}: four vec4 loads when W is a multiple of 4, else ten f32
// loads) and does 24·RN FMAs with them.
// Weights come from uniform memory, packed by conv2d_fwd_dx_pack.wgsl with RN / 4 vec4 groups per
// tile (one block of input channels per dispatch; later blocks add into y, a fixed order), and are
// read at offsets that depend only on loop counters: the same in every lane.
// Why this shape on lavapipe (Mesa 25.0): a load whose address differs between lanes runs as a loop
// over the 8 lanes with a branch and a bounds check each, while a uniform-memory load whose address
// is the same in all lanes is one scalar load broadcast to them (a storage-buffer load of that kind
// still carries a bounds-check branch per value, which measured slower: see BENCHMARKS.md). In
// conv2d_fwd_3x3 the lanes of a pixel group differ by output channels, so every weight load is a
// gather; here none is, and each per-lane source load feeds RN channels instead of 4.
// y[n,o,i,j] = b[o] + Σ_c Σ_ky Σ_kx w[o,c,ky,kx] · x[n,c,i+ky−1,j+kx−1]   (zero outside)

// Params p (binding 0): conv2d_direct_params.wgsl.
@group(0) @binding(1) var<storage, read> x: array<{{XT}}>;
@group(0) @binding(2) var<uniform> wts: array<vec4<f32>, 4096>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<{{XT}}>;

const RN: u32 = {{RN}}u;

// The 10 source values of one kernel row, columns ox0 − 1 … ox0 + 8 of the row starting at float
// index `row` (zero outside the row): l, a = ox0 … ox0 + 3, b = ox0 + 4 … ox0 + 7, r.
struct Ten { a: vec4<f32>, b: vec4<f32>, l: f32, r: f32 }

{{LOAD}}

{{STORE}}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let pg = (wid.x + wid.y * nwg.x) * 8u + lid;
  let live = pg < p.items * p.rows * p.segs;
  let seg = pg % p.segs;
  let oy = (pg / p.segs) % p.rows;
  let n = min(pg / (p.segs * p.rows), p.items - 1u);
  let ox0 = seg * 8u;
  let plane = p.h * p.w;

  {{ACC_DECL}}
  let src0 = p.xBase + (n * p.cIn + p.ci0) * plane;
  // One loop over (input channel, kernel row) rather than two nested ones: a 3-trip inner loop would
  // be unrolled by the compiler, tripling the code of the unrolled channels (and its compile time).
  for (var k = 0u; k < 3u * p.ciCount; k++) {
    let ci = k / 3u;
    let ky = k % 3u;
    let iy = i32(oy) + i32(ky) - 1;
    if (iy < 0 || iy >= i32(p.h)) { continue; }
    let v = loadTen(src0 + ci * plane + u32(iy) * p.w, ox0);
    // Pixels 0–3 and 4–7 of the group under taps kx = 0, 1, 2.
    let l0 = vec4(v.l, v.a.xyz);
    let h0 = vec4(v.a.w, v.b.xyz);
    let l1 = v.a;
    let h1 = v.b;
    let l2 = vec4(v.a.yzw, v.b.x);
    let h2 = vec4(v.b.yzw, v.r);
    // Packed vec4 index of tap (ky, 0), group 0: the same in every lane. The block has p.groups
    // (≤ RN / 4) groups; the code reads RN / 4, channels past cOut are never stored.
    let wk = k * 3u * p.groups;
    {{ACC_FMA}}
  }
  if (!live) { return; }
  let dst0 = p.yBase + (n * p.cOut + p.co0) * plane + oy * p.w + ox0;
  {{ACC_COPY}}
  // Channels of this tile inside the tensor; the bias only with the first input block.
  for (var r = 0u; r < min(RN, p.cOut - p.co0); r++) {
    var b = 0.0;
    if (p.hasBias == 1u && p.accumulate == 0u) { b = bias[p.co0 + r]; }
    store8(dst0 + r * plane, ox0, acc[2u * r], acc[2u * r + 1u], b);
  }
}
