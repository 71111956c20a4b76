// conv2d 2×2, stride 2, pad 0 forward for CPU-like adapters with subgroups (lavapipe), the input
// shared across lanes by subgroupShuffle. A workgroup is 8 lanes (one subgroup: the launcher
// requires subgroups of at least 8) and computes SEGS = {{SEGS}} segments of 8 consecutive output
// pixels of a row: lane l takes segment k = l / GL and owns output channels co0 + 4·(l % GL) … + 3
// (a vec4), GL = 8 / SEGS channel groups per tile. Per input channel a segment's 2×16 input patch
// is 8 quads of 4 consecutive values (quad q: row q / 4, columns 4·(q % 4) …); the workgroup's
// 8·SEGS quads are loaded one per lane in each of SEGS "planes" (lane s of plane j holds quad
// (8j + s) / SEGS of segment (8j + s) % SEGS: one vec4 load when W is a multiple of 4, x is read
// as XT = {{XT}}), and every lane takes its segment's 32 values from the loading lanes by
// subgroupShuffle, each value feeding one vec4 FMA. Weights come from uniform memory, packed by
// conv2d_fwd_dx_pack.wgsl with GL vec4 groups per tile, one block of input channels per dispatch
// (later blocks add into y, a fixed order). Odd inputs lose their last row/column (floor).
// Why: on lavapipe (Mesa 25.0) a storage load whose address is not a constant runs as a loop over
// the 8 lanes with a branch and a bounds check each, whatever the lanes hold; here one such load
// brings each lane 4 values that all its segment's lanes use, instead of each lane loading its own
// 32 — and a 32-bit subgroupShuffle is one AVX2 permute.
// y[n,o,i,j] = b[o] + Σ_c Σ_ky Σ_kx w[o,c,ky,kx] · x[n,c,2i+ky,2j+kx]
enable subgroups;

// Params p (binding 0): conv2d_direct_params.wgsl.
@group(0) @binding(1) var<storage, read> x: array<{{XT}}>;
@group(0) @binding(2) var<uniform> wts: array<vec4<f32>, 4096>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

const SEGS: u32 = {{SEGS}}u;
const GL: u32 = 8u / SEGS;

// x at float index row + c.x … row + c.w (c: 4 consecutive columns, clamped into the row).
fn quad(row: u32, c: vec4<u32>) -> vec4<f32> {
  return {{QUAD}};
}

// put (store 4 output channels of a pixel), firstBias: conv2d_direct_store.wgsl.

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32, @builtin(subgroup_invocation_id) sid: u32) {
  let total = p.items * p.rows * p.segs;
  let first = (wid.x + wid.y * nwg.x) * SEGS;
  let k = lid / GL;
  let G = p.groups;
  let g = min(lid % GL, G - 1u);
  let plane = p.h * p.w;
  let last = p.w - 1u;
  // Every lane stays in the loop (the shuffles read all 8): a segment past the end (of the grid or
  // of a 2-D grid's last row) is loaded as the last one and not stored.
  var rows = array<u32, 4>(0u, 0u, 0u, 0u);
  var cols = array<vec4<u32>, 4>(vec4<u32>(0u), vec4<u32>(0u), vec4<u32>(0u), vec4<u32>(0u));
  for (var j = 0u; j < SEGS; j++) {
    let qi = (8u * j + sid % 8u) / SEGS;
    let q = min(first + (8u * j + sid % 8u) % SEGS, total - 1u);
    let seg = q % p.segs;
    let oy = (q / p.segs) % p.rows;
    let n = q / (p.segs * p.rows);
    rows[j] = p.xBase + (n * p.cIn + p.ci0) * plane + (2u * oy + qi / 4u) * p.w;
    let col = seg * 16u + 4u * (qi % 4u);
    // Columns past the row end feed only output pixels that are not stored: clamped, not masked.
    cols[j] = vec4<u32>(min(col, last), min(col + 1u, last), min(col + 2u, last), min(col + 3u, last));
  }
  var r0 = rows[0]; var r1 = rows[1]; var r2 = rows[2]; var r3 = rows[3];
  let c0 = cols[0]; let c1 = cols[1]; let c2 = cols[2]; let c3 = cols[3];

  var a0 = vec4<f32>(0.0); var a1 = vec4<f32>(0.0); var a2 = vec4<f32>(0.0); var a3 = vec4<f32>(0.0);
  var a4 = vec4<f32>(0.0); var a5 = vec4<f32>(0.0); var a6 = vec4<f32>(0.0); var a7 = vec4<f32>(0.0);
  var wi = g;
  for (var ci = 0u; ci < p.ciCount; ci++) {
    var P = array<vec4<f32>, 4>(quad(r0, c0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    if (SEGS > 1u) { P[1] = quad(r1, c1); }
    if (SEGS > 2u) { P[2] = quad(r2, c2); P[3] = quad(r3, c3); }
    // Quad q of this lane's segment (row q / 4: taps ky = 0 then 1) is in plane q / GL at lane
    // (q % GL)·SEGS + k; output pixel m takes components 2(m % 2), +1 of quad 4·ky + m / 2.
    {
      let w0 = wts[wi]; let w1 = wts[wi + G];
      a0 = fma(vec4(subgroupShuffle(P[0u / GL].x, (0u % GL) * SEGS + k)), w0, a0); a0 = fma(vec4(subgroupShuffle(P[0u / GL].y, (0u % GL) * SEGS + k)), w1, a0);
      a1 = fma(vec4(subgroupShuffle(P[0u / GL].z, (0u % GL) * SEGS + k)), w0, a1); a1 = fma(vec4(subgroupShuffle(P[0u / GL].w, (0u % GL) * SEGS + k)), w1, a1);
      a2 = fma(vec4(subgroupShuffle(P[1u / GL].x, (1u % GL) * SEGS + k)), w0, a2); a2 = fma(vec4(subgroupShuffle(P[1u / GL].y, (1u % GL) * SEGS + k)), w1, a2);
      a3 = fma(vec4(subgroupShuffle(P[1u / GL].z, (1u % GL) * SEGS + k)), w0, a3); a3 = fma(vec4(subgroupShuffle(P[1u / GL].w, (1u % GL) * SEGS + k)), w1, a3);
      a4 = fma(vec4(subgroupShuffle(P[2u / GL].x, (2u % GL) * SEGS + k)), w0, a4); a4 = fma(vec4(subgroupShuffle(P[2u / GL].y, (2u % GL) * SEGS + k)), w1, a4);
      a5 = fma(vec4(subgroupShuffle(P[2u / GL].z, (2u % GL) * SEGS + k)), w0, a5); a5 = fma(vec4(subgroupShuffle(P[2u / GL].w, (2u % GL) * SEGS + k)), w1, a5);
      a6 = fma(vec4(subgroupShuffle(P[3u / GL].x, (3u % GL) * SEGS + k)), w0, a6); a6 = fma(vec4(subgroupShuffle(P[3u / GL].y, (3u % GL) * SEGS + k)), w1, a6);
      a7 = fma(vec4(subgroupShuffle(P[3u / GL].z, (3u % GL) * SEGS + k)), w0, a7); a7 = fma(vec4(subgroupShuffle(P[3u / GL].w, (3u % GL) * SEGS + k)), w1, a7);
    }
    {
      let w2 = wts[wi + 2u * G]; let w3 = wts[wi + 3u * G];
      a0 = fma(vec4(subgroupShuffle(P[4u / GL].x, (4u % GL) * SEGS + k)), w2, a0); a0 = fma(vec4(subgroupShuffle(P[4u / GL].y, (4u % GL) * SEGS + k)), w3, a0);
      a1 = fma(vec4(subgroupShuffle(P[4u / GL].z, (4u % GL) * SEGS + k)), w2, a1); a1 = fma(vec4(subgroupShuffle(P[4u / GL].w, (4u % GL) * SEGS + k)), w3, a1);
      a2 = fma(vec4(subgroupShuffle(P[5u / GL].x, (5u % GL) * SEGS + k)), w2, a2); a2 = fma(vec4(subgroupShuffle(P[5u / GL].y, (5u % GL) * SEGS + k)), w3, a2);
      a3 = fma(vec4(subgroupShuffle(P[5u / GL].z, (5u % GL) * SEGS + k)), w2, a3); a3 = fma(vec4(subgroupShuffle(P[5u / GL].w, (5u % GL) * SEGS + k)), w3, a3);
      a4 = fma(vec4(subgroupShuffle(P[6u / GL].x, (6u % GL) * SEGS + k)), w2, a4); a4 = fma(vec4(subgroupShuffle(P[6u / GL].y, (6u % GL) * SEGS + k)), w3, a4);
      a5 = fma(vec4(subgroupShuffle(P[6u / GL].z, (6u % GL) * SEGS + k)), w2, a5); a5 = fma(vec4(subgroupShuffle(P[6u / GL].w, (6u % GL) * SEGS + k)), w3, a5);
      a6 = fma(vec4(subgroupShuffle(P[7u / GL].x, (7u % GL) * SEGS + k)), w2, a6); a6 = fma(vec4(subgroupShuffle(P[7u / GL].y, (7u % GL) * SEGS + k)), w3, a6);
      a7 = fma(vec4(subgroupShuffle(P[7u / GL].z, (7u % GL) * SEGS + k)), w2, a7); a7 = fma(vec4(subgroupShuffle(P[7u / GL].w, (7u % GL) * SEGS + k)), w3, a7);
    }
    wi += 4u * G;
    r0 += plane; r1 += plane; r2 += plane; r3 += plane;
  }
  let q = first + k;
  if (q >= total || lid % GL >= G) { return; }
  let co = p.co0 + 4u * g;
  if (co >= p.cOut) { return; }
  let seg = q % p.segs;
  let oy = (q / p.segs) % p.rows;
  let n = q / (p.segs * p.rows);
  let channels = min(4u, p.cOut - co);
  let b = firstBias(co, channels);
  let ox = seg * 8u;
  let i = p.yBase + (n * p.cOut + co) * p.ho * p.wo + oy * p.wo + ox;
  put(i, ox, channels, b, a0); put(i + 1u, ox + 1u, channels, b, a1); put(i + 2u, ox + 2u, channels, b, a2); put(i + 3u, ox + 3u, channels, b, a3);
  put(i + 4u, ox + 4u, channels, b, a4); put(i + 5u, ox + 5u, channels, b, a5); put(i + 6u, ox + 6u, channels, b, a6); put(i + 7u, ox + 7u, channels, b, a7);
}
