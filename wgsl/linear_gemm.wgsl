// Tiled GEMM for the linear layer: C[M,N] = Σ_k A[m,k]·B[k,n] (+ bias[n]), with A and B read
// through strides so one kernel serves y = x·Wᵀ, dx = dy·W and dW = dyᵀ·x (src/kernels/linear.ts).
// Each workgroup stages a TM×TK tile of A and a TK×TN tile of B in shared memory and computes a
// TM×TN output tile, RM×RN outputs per invocation. Split-K: workgroup z takes the k range
// [z·k_split, (z+1)·k_split) and writes its own slice of C; linear_reduce.wgsl then adds the
// slices in fixed order. Each output sums k in ascending order, so results are deterministic.

struct Params {
  m: u32,         // rows of C
  n: u32,         // columns of C
  k: u32,         // reduction length
  k_split: u32,   // k elements per split (a multiple of TK)
  a_sm: u32,      // A[m,k] = a[m·a_sm + k·a_sk]
  a_sk: u32,
  b_sk: u32,      // B[k,n] = b[k·b_sk + n·b_sn]
  b_sn: u32,
  has_bias: u32,  // add bias[n] (only when there is one split)
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

override TM: u32 = 16u;
override TN: u32 = 16u;
override TK: u32 = 32u;
const RM = 2u;
const RN = 2u;
override THREADS: u32 = 64u;  // (TN / RN) · (TM / RM)

var<workgroup> tileA: array<f32, TM * TK>;  // [kk][r]
var<workgroup> tileB: array<f32, TK * TN>;  // [kk][col]

@compute @workgroup_size(TN / RN, TM / RM)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let row0 = wid.y * TM;
  let col0 = wid.x * TN;
  let k_begin = wid.z * p.k_split;
  let k_end = min(p.k, k_begin + p.k_split);
  let r = lid.y * RM;
  let q = lid.x * RN;
  var acc: array<f32, 4>;  // RM × RN

  for (var k0 = k_begin; k0 < k_end; k0 += TK) {
    for (var e = li; e < TM * TK; e += THREADS) {
      let rr = e / TK;
      let kk = e % TK;
      let gr = row0 + rr;
      let gk = k0 + kk;
      var value = 0.0;
      if (gr < p.m && gk < k_end) { value = a[gr * p.a_sm + gk * p.a_sk]; }
      tileA[kk * TM + rr] = value;
    }
    for (var e = li; e < TK * TN; e += THREADS) {
      var kk = e / TN;
      var cc = e % TN;
      if (p.b_sk == 1u) {  // B contiguous along k (the forward's W): neighbouring lanes take neighbouring k
        kk = e % TK;
        cc = e / TK;
      }
      let gc = col0 + cc;
      let gk = k0 + kk;
      var value = 0.0;
      if (gc < p.n && gk < k_end) { value = b[gk * p.b_sk + gc * p.b_sn]; }
      tileB[kk * TN + cc] = value;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TK; kk++) {
      let a0 = tileA[kk * TM + r];
      let a1 = tileA[kk * TM + r + 1u];
      let b0 = tileB[kk * TN + q];
      let b1 = tileB[kk * TN + q + 1u];
      acc[0] = fma(a0, b0, acc[0]);
      acc[1] = fma(a0, b1, acc[1]);
      acc[2] = fma(a1, b0, acc[2]);
      acc[3] = fma(a1, b1, acc[3]);
    }
    workgroupBarrier();
  }

  let base = wid.z * p.m * p.n;
  for (var i = 0u; i < RM; i++) {
    let gr = row0 + r + i;
    if (gr >= p.m) { continue; }
    for (var j = 0u; j < RN; j++) {
      let gc = col0 + q + j;
      if (gc >= p.n) { continue; }
      var value = acc[i * RN + j];
      if (p.has_bias != 0u) { value += bias[gc]; }
      c[base + gr * p.n + gc] = value;
    }
  }
}
