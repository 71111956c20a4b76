// Second pass of the linear layer's split-K GEMM (linear_gemm.wgsl) and its bias gradient:
// `sum_splits` adds the `splits` slices of C[M,N] in ascending order (+ bias[n]);
// `bias_grad` sums dy[n_rows, cols] over rows, db[j] = Σ_i dy[i, j], rows in ascending order.
// Fixed orders, no atomics: the same inputs give the same bits.

struct Params {
  rows: u32,      // M (sum_splits) or batch rows (bias_grad)
  cols: u32,      // N
  splits: u32,    // slices to add (sum_splits)
  has_bias: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

override WG: u32 = 64u;

@compute @workgroup_size(WG)
fn sum_splits(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  let total = p.rows * p.cols;
  if (i >= total) { return; }
  var acc = 0.0;
  for (var s = 0u; s < p.splits; s++) { acc += src[s * total + i]; }
  if (p.has_bias != 0u) { acc += bias[i % p.cols]; }
  dst[i] = acc;
}

@compute @workgroup_size(WG)
fn bias_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
  let j = (wid.x + wid.y * nwg.x) * WG + lid;
  if (j >= p.cols) { return; }
  var acc = 0.0;
  for (var i = 0u; i < p.rows; i++) { acc += src[i * p.cols + j]; }
  dst[j] = acc;
}
