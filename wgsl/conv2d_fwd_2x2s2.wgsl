// conv2d 2×2, stride 2, pad 0 (the downsampling conv), tuned for CPU-like adapters (lavapipe):
// one invocation computes 4 output channels (vec4) × 8 consecutive output pixels of one row, from
// 2 input rows of 16 values read at addresses uniform across the lanes of a pixel group; weights
// come from uniform memory, packed by conv2d_fwd_dx_pack.wgsl one block of input channels per
// dispatch (later blocks add into y). Odd inputs lose their last row/column (floor), as PyTorch.
// y[n,o,i,j] = b[o] + Σ_c Σ_ky Σ_kx w[o,c,ky,kx] · x[n,c,2i+ky,2j+kx]

// Params p (binding 0): conv2d_direct_params.wgsl.
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<uniform> wts: array<vec4<f32>, 4096>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

override WG: u32 = 64;


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
  let ix0 = seg * 16u;
  let plane = p.h * p.w;
  let G = p.groups;

  var a0 = vec4<f32>(0.0); var a1 = vec4<f32>(0.0); var a2 = vec4<f32>(0.0); var a3 = vec4<f32>(0.0);
  var a4 = vec4<f32>(0.0); var a5 = vec4<f32>(0.0); var a6 = vec4<f32>(0.0); var a7 = vec4<f32>(0.0);
  // Columns past the row end feed only output pixels that are not stored: clamped, not masked.
  let last = p.w - 1u;
  let q0 = min(ix0, last); let q1 = min(ix0 + 1u, last); let q2 = min(ix0 + 2u, last); let q3 = min(ix0 + 3u, last);
  let q4 = min(ix0 + 4u, last); let q5 = min(ix0 + 5u, last); let q6 = min(ix0 + 6u, last); let q7 = min(ix0 + 7u, last);
  let q8 = min(ix0 + 8u, last); let q9 = min(ix0 + 9u, last); let q10 = min(ix0 + 10u, last); let q11 = min(ix0 + 11u, last);
  let q12 = min(ix0 + 12u, last); let q13 = min(ix0 + 13u, last); let q14 = min(ix0 + 14u, last); let q15 = min(ix0 + 15u, last);
  var xc = p.xBase + (n * p.cIn + p.ci0) * plane + 2u * oy * p.w;
  var wi = g;
  for (var ci = 0u; ci < p.ciCount; ci++) {
    for (var ky = 0u; ky < 2u; ky++) {
      let row = xc + ky * p.w;
      let w0 = wts[wi]; let w1 = wts[wi + G];
      wi += 2u * G;
      a0 = fma(vec4(x[row + q0]), w0, a0);   a0 = fma(vec4(x[row + q1]), w1, a0);
      a1 = fma(vec4(x[row + q2]), w0, a1);   a1 = fma(vec4(x[row + q3]), w1, a1);
      a2 = fma(vec4(x[row + q4]), w0, a2);   a2 = fma(vec4(x[row + q5]), w1, a2);
      a3 = fma(vec4(x[row + q6]), w0, a3);   a3 = fma(vec4(x[row + q7]), w1, a3);
      a4 = fma(vec4(x[row + q8]), w0, a4);   a4 = fma(vec4(x[row + q9]), w1, a4);
      a5 = fma(vec4(x[row + q10]), w0, a5);  a5 = fma(vec4(x[row + q11]), w1, a5);
      a6 = fma(vec4(x[row + q12]), w0, a6);  a6 = fma(vec4(x[row + q13]), w1, a6);
      a7 = fma(vec4(x[row + q14]), w0, a7);  a7 = fma(vec4(x[row + q15]), w1, a7);
    }
    xc += plane;
  }
  let co = p.co0 + 4u * g;
  if (co >= p.cOut) { return; }
  let channels = min(4u, p.cOut - co);
  let b = firstBias(co, channels);
  let ox = seg * 8u;
  let i = p.yBase + (n * p.cOut + co) * p.ho * p.wo + oy * p.wo + ox;
  put(i, ox, channels, b, a0); put(i + 1u, ox + 1u, channels, b, a1); put(i + 2u, ox + 2u, channels, b, a2); put(i + 3u, ox + 3u, channels, b, a3);
  put(i + 4u, ox + 4u, channels, b, a4); put(i + 5u, ox + 5u, channels, b, a5); put(i + 6u, ox + 6u, channels, b, a6); put(i + 7u, ox + 7u, channels, b, a7);
}
