// Data gradient of conv2d 2×2, stride 2, pad 0, tuned for CPU-like adapters (lavapipe). Each input
// pixel (y, x) receives from exactly one output pixel (y/2, x/2) through tap (y%2, x%2):
//   dx[n,c,y,x] = Σ_o w[o,c,y%2,x%2] · dy[n,o,y/2,x/2]   (0 in a last odd row/column, never read)
// One invocation computes 4 input channels (vec4) × 8 consecutive pixels of one dx row, from 4 dy
// values read at addresses uniform across the lanes of a pixel group; Wᵀ comes from uniform
// memory (conv2d_fwd_dx_pack.wgsl), one block of output channels per dispatch, later blocks add.
// Here cIn/h/w describe dy (the source) and cOut/ho/wo describe dx (the result).

// Params p (binding 0): conv2d_direct_params.wgsl.
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<uniform> wts: array<vec4<f32>, 4096>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

override WG: u32 = 64;


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

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let perGroup = WG / p.groups;
  let slot = lid / p.groups;
  let g = lid % p.groups;
  let pg = (wid.x + wid.y * nwg.x) * perGroup + slot;
  if (slot >= perGroup || pg >= p.items * p.rows * p.segs) { return; }
  let seg = pg % p.segs;
  let yy = (pg / p.segs) % p.rows;
  let n = pg / (p.segs * p.rows);
  let i = yy / 2u;
  let ky = yy % 2u;
  let rowOk = i < p.h;
  let j0 = seg * 4u;
  let plane = p.h * p.w;
  let G = p.groups;

  var a0 = vec4<f32>(0.0); var a1 = vec4<f32>(0.0); var a2 = vec4<f32>(0.0); var a3 = vec4<f32>(0.0);
  var a4 = vec4<f32>(0.0); var a5 = vec4<f32>(0.0); var a6 = vec4<f32>(0.0); var a7 = vec4<f32>(0.0);
  let last = p.w - 1u;
  let q0 = min(j0, last); let q1 = min(j0 + 1u, last); let q2 = min(j0 + 2u, last); let q3 = min(j0 + 3u, last);
  let k0 = rowOk && j0 < p.w; let k1 = rowOk && j0 + 1u < p.w; let k2 = rowOk && j0 + 2u < p.w; let k3 = rowOk && j0 + 3u < p.w;
  var row = p.xBase + (n * p.cIn + p.ci0) * plane + min(i, p.h - 1u) * p.w;
  var wi = 2u * ky * G + g;
  for (var o = 0u; o < p.ciCount; o++) {
    let d0 = vec4(select(0.0, dy[row + q0], k0)); let d1 = vec4(select(0.0, dy[row + q1], k1));
    let d2 = vec4(select(0.0, dy[row + q2], k2)); let d3 = vec4(select(0.0, dy[row + q3], k3));
    let w0 = wts[wi]; let w1 = wts[wi + G];
    wi += 4u * G;
    a0 = fma(d0, w0, a0); a1 = fma(d0, w1, a1);
    a2 = fma(d1, w0, a2); a3 = fma(d1, w1, a3);
    a4 = fma(d2, w0, a4); a5 = fma(d2, w1, a5);
    a6 = fma(d3, w0, a6); a7 = fma(d3, w1, a7);
    row += plane;
  }
  let c0 = p.co0 + 4u * g;
  if (c0 >= p.cOut) { return; }
  let channels = min(4u, p.cOut - c0);
  let x0 = seg * 8u;
  let at = p.yBase + (n * p.cOut + c0) * p.ho * p.wo + yy * p.wo + x0;
  put(at, x0, channels, a0); put(at + 1u, x0 + 1u, channels, a1); put(at + 2u, x0 + 2u, channels, a2); put(at + 3u, x0 + 3u, channels, a3);
  put(at + 4u, x0 + 4u, channels, a4); put(at + 5u, x0 + 5u, channels, a5); put(at + 6u, x0 + 6u, channels, a6); put(at + 7u, x0 + 7u, channels, a7);
}
