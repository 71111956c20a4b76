// Barrier-free GEMM variant for the linear layer, fastest when B's columns are contiguous (b_sn = 1:
// the dx = dy·W and dW = dyᵀ·x products; any strides are correct): C[M,N] = Σ_k A[m,k]·B[k,n]. Lanes run over columns n (so B
// loads are contiguous across a subgroup), each invocation keeps RM rows of C whose A values are
// the same for every lane (uniform loads). Split-K over workgroup z as in linear_gemm.wgsl; k is
// summed in ascending order, so results are deterministic. Suits lavapipe, where shared-memory
// tiles and barriers cost more than they save at these sizes.

struct Params {
  m: u32,
  n: u32,
  k: u32,
  k_split: u32,
  a_sm: u32,
  a_sk: u32,
  b_sk: u32,
  b_sn: u32,
  has_bias: u32,
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

override WG: u32 = 64u;
const RM = 8u;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let col = wid.x * WG + lid;
  let colc = min(col, p.n - 1u);
  let row0 = wid.y * RM;
  let k_begin = wid.z * p.k_split;
  let k_end = min(p.k, k_begin + p.k_split);
  var rows: array<u32, RM>;
  for (var r = 0u; r < RM; r++) { rows[r] = min(row0 + r, p.m - 1u) * p.a_sm; }
  var acc: array<f32, RM>;
  for (var k = k_begin; k < k_end; k++) {
    let bv = b[k * p.b_sk + colc * p.b_sn];
    let ak = k * p.a_sk;
    for (var r = 0u; r < RM; r++) { acc[r] = fma(a[rows[r] + ak], bv, acc[r]); }
  }
  if (col >= p.n) { return; }
  let base = wid.z * p.m * p.n;
  for (var r = 0u; r < RM; r++) {
    let gr = row0 + r;
    if (gr >= p.m) { break; }
    var value = acc[r];
    if (p.has_bias != 0u) { value += bias[col]; }
    c[base + gr * p.n + col] = value;
  }
}
