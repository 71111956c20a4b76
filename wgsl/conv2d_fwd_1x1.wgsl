// conv2d 1×1, stride 1, pad 0 with many output channels (a per-pixel GEMM y = W·x), tuned for
// CPU-like adapters (lavapipe): one invocation computes 4 output channels (vec4) × 8 consecutive
// pixels of the flattened plane; input loads are uniform across the lanes of a pixel group and the
// weights come from uniform memory, packed by conv2d_fwd_dx_pack.wgsl one block of input channels
// per dispatch (later blocks add into y). Also the data gradient of a 1×1 conv (Wᵀ packed).
// y[n,o,q] = b[o] + Σ_c w[o,c] · x[n,c,q]   (q = flat pixel index)

// Params p (binding 0): conv2d_direct_params.wgsl.
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<uniform> wts: array<vec4<f32>, 4096>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

override WG: u32 = 64;

// Stores 4 output channels of one pixel q: y = b + v from the first input block, y += v after.
fn put(i: u32, q: u32, channels: u32, b: vec4<f32>, v: vec4<f32>) {
  let plane = p.h * p.w;
  if (q >= plane) { return; }
  for (var c = 0u; c < 4u; c++) {
    if (c < channels) {
      let k = i + c * plane;
      var prev = b[c];
      if (p.accumulate == 1u) { prev = y[k]; }
      y[k] = prev + v[c];
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
  if (slot >= perGroup || pg >= p.items * p.segs) { return; }
  let seg = pg % p.segs;
  let n = pg / p.segs;
  let plane = p.h * p.w;
  let q0 = seg * 8u;
  let last = plane - 1u;
  let G = p.groups;

  var a0 = vec4<f32>(0.0); var a1 = vec4<f32>(0.0); var a2 = vec4<f32>(0.0); var a3 = vec4<f32>(0.0);
  var a4 = vec4<f32>(0.0); var a5 = vec4<f32>(0.0); var a6 = vec4<f32>(0.0); var a7 = vec4<f32>(0.0);
  let t0 = min(q0, last); let t1 = min(q0 + 1u, last); let t2 = min(q0 + 2u, last); let t3 = min(q0 + 3u, last);
  let t4 = min(q0 + 4u, last); let t5 = min(q0 + 5u, last); let t6 = min(q0 + 6u, last); let t7 = min(q0 + 7u, last);
  var xc = p.xBase + (n * p.cIn + p.ci0) * plane;
  var wi = g;
  for (var ci = 0u; ci < p.ciCount; ci++) {
    let wv = wts[wi];
    wi += G;
    a0 = fma(vec4(x[xc + t0]), wv, a0);
    a1 = fma(vec4(x[xc + t1]), wv, a1);
    a2 = fma(vec4(x[xc + t2]), wv, a2);
    a3 = fma(vec4(x[xc + t3]), wv, a3);
    a4 = fma(vec4(x[xc + t4]), wv, a4);
    a5 = fma(vec4(x[xc + t5]), wv, a5);
    a6 = fma(vec4(x[xc + t6]), wv, a6);
    a7 = fma(vec4(x[xc + t7]), wv, a7);
    xc += plane;
  }
  let co = p.co0 + 4u * g;
  if (co >= p.cOut) { return; }
  let channels = min(4u, p.cOut - co);
  var b = vec4<f32>(0.0);
  if (p.hasBias == 1u && p.accumulate == 0u) {
    for (var c = 0u; c < 4u; c++) {
      if (c < channels) { b[c] = bias[co + c]; }
    }
  }
  let i = p.yBase + (n * p.cOut + co) * plane + q0;
  put(i, q0, channels, b, a0); put(i + 1u, q0 + 1u, channels, b, a1); put(i + 2u, q0 + 2u, channels, b, a2); put(i + 3u, q0 + 3u, channels, b, a3);
  put(i + 4u, q0 + 4u, channels, b, a4); put(i + 5u, q0 + 5u, channels, b, a5); put(i + 6u, q0 + 6u, channels, b, a6); put(i + 7u, q0 + 7u, channels, b, a7);
}
