// Data gradient of conv2d 2×2, stride 2, pad 0 for CPU-like adapters with subgroups (lavapipe),
// dy shared across lanes by subgroupShuffle. Each input pixel (y, x) receives from exactly one
// output pixel (y/2, x/2) through tap (y%2, x%2):
//   dx[n,c,y,x] = Σ_o w[o,c,y%2,x%2] · dy[n,o,y/2,x/2]   (0 in a last odd row/column)
// A workgroup is 8 lanes (one subgroup: the launcher requires subgroups of at least 8) and computes
// SEGS = {{SEGS}} segments of 8 consecutive pixels of a dx row (from 4 dy pixels each): lane l takes
// segment k = l / GL and owns input channels co0 + 4·(l % GL) … + 3 (a vec4), GL = 8 / SEGS. Per
// block of 8 dy channels the workgroup needs 8·SEGS quads (channel u, segment k: 4 dy values),
// loaded one per lane in each of SEGS planes (lane s of plane j holds channel (8j + s) / SEGS of
// segment (8j + s) % SEGS: one vec4 load when the dy width is a multiple of 4, dy is read as
// XT = {{XT}}); every lane takes its segment's values by subgroupShuffle. Wᵀ comes from uniform
// memory (conv2d_fwd_dx_pack.wgsl, GL vec4 groups per tile, input blocks a multiple of 8 channels,
// zero past the last channel), one block of dy channels per dispatch, later blocks add.
// Here cIn/h/w describe dy (the source) and cOut/ho/wo describe dx (the result).
enable subgroups;

// Params p (binding 0): conv2d_direct_params.wgsl.
@group(0) @binding(1) var<storage, read> x: array<{{XT}}>;
@group(0) @binding(2) var<uniform> wts: array<vec4<f32>, 4096>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

const SEGS: u32 = {{SEGS}}u;
const GL: u32 = 8u / SEGS;

// dy at float index row + c.x … row + c.w (c: 4 consecutive columns, clamped into the row).
fn quad(row: u32, c: vec4<u32>) -> vec4<f32> {
  return {{QUAD}};
}

// Stores 4 input channels of one dx pixel: written by the first block of dy channels, added after.
fn put(i: u32, xx: u32, channels: u32, v: vec4<f32>) {
  if (xx >= p.wo) { return; }
  let plane = p.ho * p.wo;
  for (var c = 0u; c < 4u; c++) {
    if (c < channels) {
      let k = i + c * plane;
      var prev = 0.0;
      if (p.accumulate == 1u) { prev = dx[k]; }
      dx[k] = prev + v[c];
    }
  }
}

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
  // Every lane stays in the loop (the shuffles read all 8): a segment past the end is loaded as
  // the last one and not stored. A last odd dx row or column has no dy pixel: masked to zero.
  var rows = array<u32, 4>(0u, 0u, 0u, 0u);
  var chans = array<u32, 4>(0u, 0u, 0u, 0u);
  var cols = array<vec4<u32>, 4>(vec4<u32>(0u), vec4<u32>(0u), vec4<u32>(0u), vec4<u32>(0u));
  var masks = array<vec4<bool>, 4>(vec4<bool>(false), vec4<bool>(false), vec4<bool>(false), vec4<bool>(false));
  for (var j = 0u; j < SEGS; j++) {
    chans[j] = (8u * j + sid % 8u) / SEGS;
    let q = min(first + (8u * j + sid % 8u) % SEGS, total - 1u);
    let seg = q % p.segs;
    let yy = (q / p.segs) % p.rows;
    let n = q / (p.segs * p.rows);
    let i = yy / 2u;
    rows[j] = p.xBase + (n * p.cIn + p.ci0) * plane + min(i, p.h - 1u) * p.w;
    let j0 = seg * 4u;
    cols[j] = vec4<u32>(min(j0, last), min(j0 + 1u, last), min(j0 + 2u, last), min(j0 + 3u, last));
    let rowOk = i < p.h;
    masks[j] = vec4<bool>(rowOk && j0 < p.w, rowOk && j0 + 1u < p.w, rowOk && j0 + 2u < p.w, rowOk && j0 + 3u < p.w);
  }
  let r0 = rows[0]; let r1 = rows[1]; let r2 = rows[2]; let r3 = rows[3];
  let c0 = cols[0]; let c1 = cols[1]; let c2 = cols[2]; let c3 = cols[3];
  let u0 = chans[0]; let u1 = chans[1]; let u2 = chans[2]; let u3 = chans[3];
  let m0 = masks[0]; let m1 = masks[1]; let m2 = masks[2]; let m3 = masks[3];
  let ky = ((first + k) / p.segs) % p.rows % 2u;

  var a0 = vec4<f32>(0.0); var a1 = vec4<f32>(0.0); var a2 = vec4<f32>(0.0); var a3 = vec4<f32>(0.0);
  var a4 = vec4<f32>(0.0); var a5 = vec4<f32>(0.0); var a6 = vec4<f32>(0.0); var a7 = vec4<f32>(0.0);
  var wi = 2u * ky * G + g;
  let lastC = p.ciCount - 1u;
  for (var o0 = 0u; o0 < p.ciCount; o0 += 8u) {
    // Past the block's last channel a lane loads zeros (and the packed weights there are zero).
    var P = array<vec4<f32>, 4>(select(vec4<f32>(0.0), quad(r0 + min(o0 + u0, lastC) * plane, c0), m0 & vec4<bool>(o0 + u0 < p.ciCount)),
                                vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    if (SEGS > 1u) { P[1] = select(vec4<f32>(0.0), quad(r1 + min(o0 + u1, lastC) * plane, c1), m1 & vec4<bool>(o0 + u1 < p.ciCount)); }
    if (SEGS > 2u) {
      P[2] = select(vec4<f32>(0.0), quad(r2 + min(o0 + u2, lastC) * plane, c2), m2 & vec4<bool>(o0 + u2 < p.ciCount));
      P[3] = select(vec4<f32>(0.0), quad(r3 + min(o0 + u3, lastC) * plane, c3), m3 & vec4<bool>(o0 + u3 < p.ciCount));
    }
    // Dy channel o0 + u of this lane's segment (in plane u / GL at lane (u % GL)·SEGS + k) through
    // taps (ky, 0) and (ky, 1): dy pixel t feeds dx pixels 2t and 2t + 1.
    {
      let w0 = wts[wi]; let w1 = wts[wi + G];
      let d0 = vec4(subgroupShuffle(P[0u / GL].x, (0u % GL) * SEGS + k)); let d1 = vec4(subgroupShuffle(P[0u / GL].y, (0u % GL) * SEGS + k));
      let d2 = vec4(subgroupShuffle(P[0u / GL].z, (0u % GL) * SEGS + k)); let d3 = vec4(subgroupShuffle(P[0u / GL].w, (0u % GL) * SEGS + k));
      a0 = fma(d0, w0, a0); a1 = fma(d0, w1, a1); a2 = fma(d1, w0, a2); a3 = fma(d1, w1, a3);
      a4 = fma(d2, w0, a4); a5 = fma(d2, w1, a5); a6 = fma(d3, w0, a6); a7 = fma(d3, w1, a7);
      wi += 4u * G;
    }
    {
      let w0 = wts[wi]; let w1 = wts[wi + G];
      let d0 = vec4(subgroupShuffle(P[1u / GL].x, (1u % GL) * SEGS + k)); let d1 = vec4(subgroupShuffle(P[1u / GL].y, (1u % GL) * SEGS + k));
      let d2 = vec4(subgroupShuffle(P[1u / GL].z, (1u % GL) * SEGS + k)); let d3 = vec4(subgroupShuffle(P[1u / GL].w, (1u % GL) * SEGS + k));
      a0 = fma(d0, w0, a0); a1 = fma(d0, w1, a1); a2 = fma(d1, w0, a2); a3 = fma(d1, w1, a3);
      a4 = fma(d2, w0, a4); a5 = fma(d2, w1, a5); a6 = fma(d3, w0, a6); a7 = fma(d3, w1, a7);
      wi += 4u * G;
    }
    {
      let w0 = wts[wi]; let w1 = wts[wi + G];
      let d0 = vec4(subgroupShuffle(P[2u / GL].x, (2u % GL) * SEGS + k)); let d1 = vec4(subgroupShuffle(P[2u / GL].y, (2u % GL) * SEGS + k));
      let d2 = vec4(subgroupShuffle(P[2u / GL].z, (2u % GL) * SEGS + k)); let d3 = vec4(subgroupShuffle(P[2u / GL].w, (2u % GL) * SEGS + k));
      a0 = fma(d0, w0, a0); a1 = fma(d0, w1, a1); a2 = fma(d1, w0, a2); a3 = fma(d1, w1, a3);
      a4 = fma(d2, w0, a4); a5 = fma(d2, w1, a5); a6 = fma(d3, w0, a6); a7 = fma(d3, w1, a7);
      wi += 4u * G;
    }
    {
      let w0 = wts[wi]; let w1 = wts[wi + G];
      let d0 = vec4(subgroupShuffle(P[3u / GL].x, (3u % GL) * SEGS + k)); let d1 = vec4(subgroupShuffle(P[3u / GL].y, (3u % GL) * SEGS + k));
      let d2 = vec4(subgroupShuffle(P[3u / GL].z, (3u % GL) * SEGS + k)); let d3 = vec4(subgroupShuffle(P[3u / GL].w, (3u % GL) * SEGS + k));
      a0 = fma(d0, w0, a0); a1 = fma(d0, w1, a1); a2 = fma(d1, w0, a2); a3 = fma(d1, w1, a3);
      a4 = fma(d2, w0, a4); a5 = fma(d2, w1, a5); a6 = fma(d3, w0, a6); a7 = fma(d3, w1, a7);
      wi += 4u * G;
    }
    {
      let w0 = wts[wi]; let w1 = wts[wi + G];
      let d0 = vec4(subgroupShuffle(P[4u / GL].x, (4u % GL) * SEGS + k)); let d1 = vec4(subgroupShuffle(P[4u / GL].y, (4u % GL) * SEGS + k));
      let d2 = vec4(subgroupShuffle(P[4u / GL].z, (4u % GL) * SEGS + k)); let d3 = vec4(subgroupShuffle(P[4u / GL].w, (4u % GL) * SEGS + k));
      a0 = fma(d0, w0, a0); a1 = fma(d0, w1, a1); a2 = fma(d1, w0, a2); a3 = fma(d1, w1, a3);
      a4 = fma(d2, w0, a4); a5 = fma(d2, w1, a5); a6 = fma(d3, w0, a6); a7 = fma(d3, w1, a7);
      wi += 4u * G;
    }
    {
      let w0 = wts[wi]; let w1 = wts[wi + G];
      let d0 = vec4(subgroupShuffle(P[5u / GL].x, (5u % GL) * SEGS + k)); let d1 = vec4(subgroupShuffle(P[5u / GL].y, (5u % GL) * SEGS + k));
      let d2 = vec4(subgroupShuffle(P[5u / GL].z, (5u % GL) * SEGS + k)); let d3 = vec4(subgroupShuffle(P[5u / GL].w, (5u % GL) * SEGS + k));
      a0 = fma(d0, w0, a0); a1 = fma(d0, w1, a1); a2 = fma(d1, w0, a2); a3 = fma(d1, w1, a3);
      a4 = fma(d2, w0, a4); a5 = fma(d2, w1, a5); a6 = fma(d3, w0, a6); a7 = fma(d3, w1, a7);
      wi += 4u * G;
    }
    {
      let w0 = wts[wi]; let w1 = wts[wi + G];
      let d0 = vec4(subgroupShuffle(P[6u / GL].x, (6u % GL) * SEGS + k)); let d1 = vec4(subgroupShuffle(P[6u / GL].y, (6u % GL) * SEGS + k));
      let d2 = vec4(subgroupShuffle(P[6u / GL].z, (6u % GL) * SEGS + k)); let d3 = vec4(subgroupShuffle(P[6u / GL].w, (6u % GL) * SEGS + k));
      a0 = fma(d0, w0, a0); a1 = fma(d0, w1, a1); a2 = fma(d1, w0, a2); a3 = fma(d1, w1, a3);
      a4 = fma(d2, w0, a4); a5 = fma(d2, w1, a5); a6 = fma(d3, w0, a6); a7 = fma(d3, w1, a7);
      wi += 4u * G;
    }
    {
      let w0 = wts[wi]; let w1 = wts[wi + G];
      let d0 = vec4(subgroupShuffle(P[7u / GL].x, (7u % GL) * SEGS + k)); let d1 = vec4(subgroupShuffle(P[7u / GL].y, (7u % GL) * SEGS + k));
      let d2 = vec4(subgroupShuffle(P[7u / GL].z, (7u % GL) * SEGS + k)); let d3 = vec4(subgroupShuffle(P[7u / GL].w, (7u % GL) * SEGS + k));
      a0 = fma(d0, w0, a0); a1 = fma(d0, w1, a1); a2 = fma(d1, w0, a2); a3 = fma(d1, w1, a3);
      a4 = fma(d2, w0, a4); a5 = fma(d2, w1, a5); a6 = fma(d3, w0, a6); a7 = fma(d3, w1, a7);
      wi += 4u * G;
    }
  }
  let q = first + k;
  if (q >= total || lid % GL >= G) { return; }
  let c = p.co0 + 4u * g;
  if (c >= p.cOut) { return; }
  let seg = q % p.segs;
  let yy = (q / p.segs) % p.rows;
  let n = q / (p.segs * p.rows);
  let channels = min(4u, p.cOut - c);
  let x0 = seg * 8u;
  let at = p.yBase + (n * p.cOut + c) * p.ho * p.wo + yy * p.wo + x0;
  put(at, x0, channels, a0); put(at + 1u, x0 + 1u, channels, a1); put(at + 2u, x0 + 2u, channels, a2); put(at + 3u, x0 + 3u, channels, a3);
  put(at + 4u, x0 + 4u, channels, a4); put(at + 5u, x0 + 5u, channels, a5); put(at + 6u, x0 + 6u, channels, a6); put(at + 7u, x0 + 7u, channels, a7);
}
