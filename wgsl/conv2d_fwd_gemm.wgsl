// conv2d forward for any kernel size, stride and padding, as an implicit GEMM (no im2col buffer):
//   Y[m][o] = b[o] + Σ_k A[m][k] · B[k][o],  m = (n, i, j) output pixel, o = output channel,
//   k = (c, ky, kx),  A[m][k] = x[n, c, i·s+ky−p, j·s+kx−p] (zero outside),  B[k][o] = w[o][k] (OIHW).
// A 16×16 workgroup computes a 64-pixel × 64-channel tile; each invocation 4 pixels × 4 channels.
// A and B are staged through workgroup memory 16 values of k at a time; B is read as vec4 along k
// when K = cIn·kh·kw is a multiple of 4. This is the general path (and the one for real GPUs).

struct Params {
  cIn: u32, h: u32, w: u32, cOut: u32,
  ho: u32, wo: u32, kh: u32, kw: u32,
  stride: u32, pad: u32, xBase: u32, yBase: u32,
  m: u32, k: u32, hasBias: u32, _p0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

const TM = 64u;
const TN = 64u;
const TK = 16u;
var<workgroup> As: array<vec4<f32>, 256>;  // [k][m / 4]
var<workgroup> Bs: array<vec4<f32>, 256>;  // [k][o / 4]

fn wAt(i: u32) -> f32 {
  return w[i / 4u][i % 4u];
}

fn put(m: u32, o: u32, v: f32) {
  if (m >= p.m || o >= p.cOut) { return; }
  let plane = p.ho * p.wo;
  let n = m / plane;
  var b = 0.0;
  if (p.hasBias == 1u) { b = bias[o]; }
  y[p.yBase + (n * p.cOut + o) * plane + m % plane] = b + v;
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let mTile = (wid.x + wid.y * nwg.x) * TM;
  let oTile = wid.z * TN;
  let tx = lid % 16u;
  let ty = lid / 16u;
  let taps = p.kh * p.kw;
  let plane = p.ho * p.wo;

  // A loader: one pixel column (m), k rows lid/64 + 4r.
  let mc = lid % 64u;
  let mA = mTile + mc;
  let mOk = mA < p.m;
  let nA = mA / plane;
  let iy0 = i32((mA % plane) / p.wo * p.stride) - i32(p.pad);
  let ix0 = i32(mA % p.wo * p.stride) - i32(p.pad);
  let xItem = p.xBase + nA * p.cIn * p.h * p.w;
  // B loader: 4 consecutive k of one output channel.
  let kq = (lid % 4u) * 4u;
  let oB = oTile + lid / 4u;
  let vecB = p.k % 4u == 0u;

  var c0 = vec4<f32>(0.0); var c1 = vec4<f32>(0.0); var c2 = vec4<f32>(0.0); var c3 = vec4<f32>(0.0);
  for (var k0 = 0u; k0 < p.k; k0 += TK) {
    for (var r = 0u; r < 4u; r++) {
      let kr = lid / 64u + 4u * r;
      let k = k0 + kr;
      let c = k / taps;
      let t = k % taps;
      let iy = iy0 + i32(t / p.kw);
      let ix = ix0 + i32(t % p.kw);
      let ok = mOk && k < p.k && iy >= 0 && iy < i32(p.h) && ix >= 0 && ix < i32(p.w);
      var v = 0.0;
      if (ok) { v = x[xItem + (c * p.h + u32(iy)) * p.w + u32(ix)]; }
      As[kr * 16u + mc / 4u][mc % 4u] = v;
    }
    var bv = vec4<f32>(0.0);
    if (oB < p.cOut) {
      let i = oB * p.k + k0 + kq;
      if (vecB && k0 + kq < p.k) {
        bv = w[i / 4u];
      } else {
        for (var e = 0u; e < 4u; e++) {
          if (k0 + kq + e < p.k) { bv[e] = wAt(i + e); }
        }
      }
    }
    let ob = lid / 4u;
    Bs[kq * 16u + ob / 4u][ob % 4u] = bv.x;
    Bs[(kq + 1u) * 16u + ob / 4u][ob % 4u] = bv.y;
    Bs[(kq + 2u) * 16u + ob / 4u][ob % 4u] = bv.z;
    Bs[(kq + 3u) * 16u + ob / 4u][ob % 4u] = bv.w;
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
  let o0 = oTile + ty * 4u;
  for (var i = 0u; i < 4u; i++) {
    put(m0 + i, o0, c0[i]);
    put(m0 + i, o0 + 1u, c1[i]);
    put(m0 + i, o0 + 2u, c2[i]);
    put(m0 + i, o0 + 3u, c3[i]);
  }
}
