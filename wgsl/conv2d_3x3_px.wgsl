// conv2d 3×3, stride 1, pad 1 for CPU-like adapters (lavapipe), lanes over pixels: forward, and the
// data gradient (dy convolved with Wᵀ flipped, the weights read in that order — no packing pass).
// A workgroup is 8 lanes (one SIMD row of lavapipe's AVX2 code) on one output row of one batch
// item and one tile of RN = {{RN}} output channels; lane l takes the 8 consecutive output pixels of
// segment 8·wid.x + l. Per input channel and kernel row a lane reads the 10 source values its 8
// pixels need (as XT = {{XT}}: four vec4 loads when W is a multiple of 4, else ten f32 loads) and
// the tile's 3·RN weights, and does 24·RN FMAs.
// Why this shape on lavapipe (Mesa 25.0): a storage load whose address differs between lanes runs
// as a loop over the 8 lanes with a branch and a bounds check each, while one whose address is the
// same in every lane (it depends only on the workgroup id, loop counters and uniforms) is a single
// scalar load broadcast to the lanes. Here every weight load is of the second kind — so the
// weights come straight from a storage buffer (no 64 KiB uniform blocks, one pass over the output
// instead of one per block) — and each per-lane source load feeds 4·RN·(up to 3) FMAs.
// Weight of output channel o (of cOut), source channel c (of cIn), tap t = 3·ky + kx:
//   w[o·sO + c·sI + (flip ? 8 − t : t)]
// forward: sO = cIn·9, sI = 9, flip 0; data gradient (o = x channel, c = dy channel): sO = 9,
// sI = cIn_x·9, flip 1.
// y[n,o,i,j] = b[o] + Σ_c Σ_ky Σ_kx w(o,c,ky,kx) · src[n,c,i+ky−1,j+kx−1]   (zero outside)

struct Params {
  cIn: u32, h: u32, w: u32, cOut: u32,
  srcBase: u32, dstBase: u32, segs: u32, segBlocks: u32,
  sO: u32, sI: u32, flip: u32, hasBias: u32,
  rows: u32, tiles: u32, _p0: u32, _p1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<{{XT}}>;
@group(0) @binding(2) var<storage, read> wt: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<{{XT}}>;

const RN: u32 = {{RN}}u;

// The 10 source values of one kernel row: columns ox0 − 1 … ox0 + 8 of the row starting at float
// index `row` (zero outside the row). v[0] = column ox0 − 1.
struct Ten { a: vec4<f32>, b: vec4<f32>, l: f32, r: f32 }

{{LOAD}}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  // Workgroup → (segment block, row, item, channel tile); all uniform across the lanes.
  let g = wid.x + wid.y * nwg.x;
  let blockIdx = g % p.segBlocks;
  let oy = (g / p.segBlocks) % p.h;
  let rest = g / (p.segBlocks * p.h);
  let tile = rest % p.tiles;
  let n = rest / p.tiles;
  if (n >= p.rows) { return; }
  let seg = blockIdx * 8u + lid;
  let ox0 = seg * 8u;
  let co0 = tile * RN;
  let plane = p.h * p.w;

  {{ACC_DECL}}
  var src = p.srcBase + n * p.cIn * plane;
  var wc = co0 * p.sO;
  for (var ci = 0u; ci < p.cIn; ci++) {
    for (var ky = 0u; ky < 3u; ky++) {
      let iy = i32(oy) + i32(ky) - 1;
      if (iy < 0 || iy >= i32(p.h)) { continue; }
      let v = loadTen(src + u32(iy) * p.w, ox0);
      // Pixels 0–3 and 4–7 of the segment under taps kx = 0, 1, 2.
      let l0 = vec4(v.l, v.a.xyz);
      let h0 = vec4(v.a.w, v.b.xyz);
      let l1 = v.a;
      let h1 = v.b;
      let l2 = vec4(v.a.yzw, v.b.x);
      let h2 = vec4(v.b.yzw, v.r);
      // Weight indices of taps (ky, 0), (ky, 1), (ky, 2) for the tile's first channel.
      let f = p.flip == 1u;
      let t0 = wc + select(3u * ky, 8u - 3u * ky, f);
      let t1 = wc + select(3u * ky + 1u, 7u - 3u * ky, f);
      let t2 = wc + select(3u * ky + 2u, 6u - 3u * ky, f);
      {{ACC_FMA}}
    }
    src += plane;
    wc += p.sI;
  }
  if (seg >= p.segs) { return; }
  let dst0 = p.dstBase + (n * p.cOut + co0) * plane + oy * p.w + ox0;
  {{ACC_STORE}}
}
