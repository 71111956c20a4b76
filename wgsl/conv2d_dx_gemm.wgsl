// Data gradient of conv2d for any kernel size, stride and padding, as an implicit GEMM in gather
// form (each input pixel sums over the output pixels that read it; no scatter, no atomics):
//   dX[m][c] = Σ_k A[m][k] · B[k][c],  m = (n, iy, ix) input pixel, c = input channel, k = (o, ky, kx),
//   A[m][k] = dy[n, o, (iy+p−ky)/s, (ix+p−kx)/s] when both divisions are exact and in range, else 0,
//   B[k][c] = w[o, c, ky, kx].
// Same tiling as conv2d_fwd_gemm.wgsl: 64 pixels × 64 channels per 16×16 workgroup, 4×4 each.

struct Params {
  cIn: u32, h: u32, w: u32, cOut: u32,
  ho: u32, wo: u32, kh: u32, kw: u32,
  stride: u32, pad: u32, dyBase: u32, dxBase: u32,
  m: u32, k: u32, _p0: u32, _p1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

const TM = 64u;
const TN = 64u;
const TK = 16u;
var<workgroup> As: array<vec4<f32>, 256>;  // [k][m / 4]
var<workgroup> Bs: array<vec4<f32>, 256>;  // [k][c / 4]

fn put(m: u32, c: u32, v: f32) {
  if (m >= p.m || c >= p.cIn) { return; }
  let plane = p.h * p.w;
  dx[p.dxBase + (m / plane * p.cIn + c) * plane + m % plane] = v;
}

// Output coordinate that reads input coordinate `i` through tap `t`, or -1.
fn source(i: i32, t: u32, size: u32) -> i32 {
  let num = i + i32(p.pad) - i32(t);
  let s = i32(p.stride);
  if (num < 0 || num % s != 0 || num / s >= i32(size)) { return -1; }
  return num / s;
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let mTile = (wid.x + wid.y * nwg.x) * TM;
  let cTile = wid.z * TN;
  let tx = lid % 16u;
  let ty = lid / 16u;
  let taps = p.kh * p.kw;
  let plane = p.h * p.w;

  let mc = lid % 64u;
  let mA = mTile + mc;
  let mOk = mA < p.m;
  let iy = i32((mA % plane) / p.w);
  let ix = i32(mA % p.w);
  let dyItem = p.dyBase + mA / plane * p.cOut * p.ho * p.wo;
  let kc = lid % 16u;

  var c0 = vec4<f32>(0.0); var c1 = vec4<f32>(0.0); var c2 = vec4<f32>(0.0); var c3 = vec4<f32>(0.0);
  for (var k0 = 0u; k0 < p.k; k0 += TK) {
    for (var r = 0u; r < 4u; r++) {
      let kr = lid / 64u + 4u * r;
      let k = k0 + kr;
      let o = k / taps;
      let t = k % taps;
      let oy = source(iy, t / p.kw, p.ho);
      let ox = source(ix, t % p.kw, p.wo);
      var v = 0.0;
      if (mOk && k < p.k && oy >= 0 && ox >= 0) { v = dy[dyItem + (o * p.ho + u32(oy)) * p.wo + u32(ox)]; }
      As[kr * 16u + mc / 4u][mc % 4u] = v;
    }
    let kB = k0 + kc;
    let oB = kB / taps;
    let tB = kB % taps;
    for (var r = 0u; r < 4u; r++) {
      let cr = lid / 16u + 16u * r;
      let c = cTile + cr;
      var v = 0.0;
      if (kB < p.k && c < p.cIn) { v = w[(oB * p.cIn + c) * taps + tB]; }
      Bs[kc * 16u + cr / 4u][cr % 4u] = v;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TK; kk++) {
      let a = As[kk * 16u + tx];
      let b = Bs[kk * 16u + ty];
      c0 = fma(a, vec4(b.x), c0);
      c1 = fma(a, vec4(b.y), c1);
      c2 = fma(a, vec4(b.z), c2);
      c3 = fma(a, vec4(b.w), c3);
    }
    workgroupBarrier();
  }
  let m0 = mTile + tx * 4u;
  let cc = cTile + ty * 4u;
  for (var i = 0u; i < 4u; i++) {
    put(m0 + i, cc, c0[i]);
    put(m0 + i, cc + 1u, c1[i]);
    put(m0 + i, cc + 2u, c2[i]);
    put(m0 + i, cc + 3u, c3[i]);
  }
}
