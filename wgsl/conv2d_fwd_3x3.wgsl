// conv2d 3×3, stride 1, pad 1, tuned for CPU-like adapters (lavapipe): lanes over output
// channels. One invocation computes 4 output channels (a vec4) × 8 consecutive pixels of one row;
// the (≤ 4) lanes of a pixel group read the same input values, and each reads its own weights
// from uniform memory (packed by conv2d_fwd_dx_pack.wgsl, one block of input channels per
// dispatch). Successive input-channel blocks add into y in a fixed order (deterministic). Column
// offsets and masks are computed once per invocation; rows outside the image are skipped.
// y[n,o,i,j] = b[o] + Σ_c Σ_ky Σ_kx w[o,c,ky,kx] · x[n,c,i+ky−1,j+kx−1]   (zero outside)
// Also the data gradient of a 3×3 s1 p1 conv, with Wᵀ flipped packed as the weights.

// Params p (binding 0): conv2d_direct_params.wgsl.
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<uniform> wts: array<vec4<f32>, 4096>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

override WG: u32 = 64;

fn col(ix: i32) -> u32 {
  return u32(clamp(ix, 0, i32(p.w) - 1));
}

fn inside(ix: i32) -> bool {
  return ix >= 0 && ix < i32(p.w);
}

// put (store 4 output channels of a pixel), firstBias: conv2d_direct_store.wgsl.

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let perGroup = WG / p.groups;
  let slot = lid / p.groups;
  let g = lid % p.groups;
  let pg = (wid.x + wid.y * nwg.x) * perGroup + slot;
  if (slot >= perGroup || pg >= p.items * p.rows * p.segs) { return; }
  let seg = pg % p.segs;
  let oy = (pg / p.segs) % p.rows;
  let n = pg / (p.segs * p.rows);
  let ox0 = i32(seg * 8u);
  let plane = p.h * p.w;
  let G = p.groups;

  var a0 = vec4<f32>(0.0); var a1 = vec4<f32>(0.0); var a2 = vec4<f32>(0.0); var a3 = vec4<f32>(0.0);
  var a4 = vec4<f32>(0.0); var a5 = vec4<f32>(0.0); var a6 = vec4<f32>(0.0); var a7 = vec4<f32>(0.0);
  let c0 = col(ox0 - 1); let c1 = col(ox0); let c2 = col(ox0 + 1); let c3 = col(ox0 + 2); let c4 = col(ox0 + 3);
  let c5 = col(ox0 + 4); let c6 = col(ox0 + 5); let c7 = col(ox0 + 6); let c8 = col(ox0 + 7); let c9 = col(ox0 + 8);
  let k0 = inside(ox0 - 1); let k2 = inside(ox0 + 1); let k3 = inside(ox0 + 2); let k4 = inside(ox0 + 3);
  let k5 = inside(ox0 + 4); let k6 = inside(ox0 + 5); let k7 = inside(ox0 + 6); let k8 = inside(ox0 + 7); let k9 = inside(ox0 + 8);
  var xc = p.xBase + (n * p.cIn + p.ci0) * plane;
  var wi = g;
  for (var ci = 0u; ci < p.ciCount; ci++) {
    for (var ky = 0; ky < 3; ky++) {
      let iy = i32(oy) + ky - 1;
      if (iy < 0 || iy >= i32(p.h)) { wi += 3u * G; continue; }
      let row = xc + u32(iy) * p.w;
      let v0 = select(0.0, x[row + c0], k0); let v1 = x[row + c1];
      let v2 = select(0.0, x[row + c2], k2); let v3 = select(0.0, x[row + c3], k3);
      let v4 = select(0.0, x[row + c4], k4); let v5 = select(0.0, x[row + c5], k5);
      let v6 = select(0.0, x[row + c6], k6); let v7 = select(0.0, x[row + c7], k7);
      let v8 = select(0.0, x[row + c8], k8); let v9 = select(0.0, x[row + c9], k9);
      let w0 = wts[wi]; let w1 = wts[wi + G]; let w2 = wts[wi + 2u * G];
      wi += 3u * G;
      a0 = fma(vec4(v0), w0, a0); a0 = fma(vec4(v1), w1, a0); a0 = fma(vec4(v2), w2, a0);
      a1 = fma(vec4(v1), w0, a1); a1 = fma(vec4(v2), w1, a1); a1 = fma(vec4(v3), w2, a1);
      a2 = fma(vec4(v2), w0, a2); a2 = fma(vec4(v3), w1, a2); a2 = fma(vec4(v4), w2, a2);
      a3 = fma(vec4(v3), w0, a3); a3 = fma(vec4(v4), w1, a3); a3 = fma(vec4(v5), w2, a3);
      a4 = fma(vec4(v4), w0, a4); a4 = fma(vec4(v5), w1, a4); a4 = fma(vec4(v6), w2, a4);
      a5 = fma(vec4(v5), w0, a5); a5 = fma(vec4(v6), w1, a5); a5 = fma(vec4(v7), w2, a5);
      a6 = fma(vec4(v6), w0, a6); a6 = fma(vec4(v7), w1, a6); a6 = fma(vec4(v8), w2, a6);
      a7 = fma(vec4(v7), w0, a7); a7 = fma(vec4(v8), w1, a7); a7 = fma(vec4(v9), w2, a7);
    }
    xc += plane;
  }
  let co = p.co0 + 4u * g;
  if (co >= p.cOut) { return; }
  let channels = min(4u, p.cOut - co);
  let b = firstBias(co, channels);
  let ox = u32(ox0);
  let i = p.yBase + (n * p.cOut + co) * p.ho * p.wo + oy * p.wo + ox;
  put(i, ox, channels, b, a0); put(i + 1u, ox + 1u, channels, b, a1); put(i + 2u, ox + 2u, channels, b, a2); put(i + 3u, ox + 3u, channels, b, a3);
  put(i + 4u, ox + 4u, channels, b, a4); put(i + 5u, ox + 5u, channels, b, a5); put(i + 6u, ox + 6u, channels, b, a6); put(i + 7u, ox + 7u, channels, b, a7);
}
