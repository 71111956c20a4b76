// conv2d 1×1, stride 1, pad 0 with few output channels (the 256→1 and 128→1 final convs, and
// their data gradient when cIn is small): lanes over pixels, each invocation 4 consecutive pixels
// × 4 output channels (workgroup z picks the channel quad). The weight loaded at each step is the
// same for every lane (a uniform address), so it is read from storage; the weight is addressed
// through strides, so Wᵀ (the data gradient, dx = Wᵀ·dy) needs no copy.
// y[n,o,q] = b[o] + Σ_c w[o·wso + c·wsi] · x[n,c,q]   (q = flat pixel index)

struct Params {
  cIn: u32, cOut: u32, plane: u32, items: u32,
  xBase: u32, yBase: u32, wso: u32, wsi: u32,
  quads: u32, hasBias: u32, _p0: u32, _p1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

override WG: u32 = 64;

fn wt(o: u32, c: u32) -> f32 {
  return select(0.0, w[min(o, p.cOut - 1u) * p.wso + c * p.wsi], o < p.cOut);
}

fn put(n: u32, o: u32, q: u32, v: vec4<f32>) {
  if (o >= p.cOut) { return; }
  var b = 0.0;
  if (p.hasBias == 1u) { b = bias[o]; }
  let base = p.yBase + (n * p.cOut + o) * p.plane + q;
  for (var k = 0u; k < 4u; k++) {
    if (q + k < p.plane) { y[base + k] = b + v[k]; }
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = (wid.x + wid.y * nwg.x) * WG + lid;
  if (t >= p.items * p.quads) { return; }
  let n = t / p.quads;
  let q = (t % p.quads) * 4u;
  let o = wid.z * 4u;
  let last = p.plane - 1u;
  var xc = p.xBase + n * p.cIn * p.plane;
  var a0 = vec4<f32>(0.0); var a1 = vec4<f32>(0.0); var a2 = vec4<f32>(0.0); var a3 = vec4<f32>(0.0);
  for (var c = 0u; c < p.cIn; c++) {
    let v = vec4<f32>(x[xc + min(q, last)], x[xc + min(q + 1u, last)], x[xc + min(q + 2u, last)], x[xc + min(q + 3u, last)]);
    a0 = fma(v, vec4(wt(o, c)), a0);
    a1 = fma(v, vec4(wt(o + 1u, c)), a1);
    a2 = fma(v, vec4(wt(o + 2u, c)), a2);
    a3 = fma(v, vec4(wt(o + 3u, c)), a3);
    xc += p.plane;
  }
  put(n, o, q, a0); put(n, o + 1u, q, a1); put(n, o + 2u, q, a2); put(n, o + 3u, q, a3);
}
