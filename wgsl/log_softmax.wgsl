// Row-wise log-softmax, numerically stable: logp[i,j] = (z[i,j] − m_i) − log Σ_j exp(z[i,j] − m_i),
// m_i = max_j z[i,j] (so ±1000 logits neither overflow nor underflow to −inf for the largest class).
// z − m is exact near the maximum; folding m + log Σ first would lose digits for large logits.
// One invocation per row; the column loops run in index order, so results are deterministic.

struct Params {
  n: u32,  // rows
  c: u32,  // classes
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> logp: array<f32>;

override WG: u32 = 64u;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= p.n) { return; }
  let row = i * p.c;
  var m = logits[row];
  for (var j = 1u; j < p.c; j++) { m = max(m, logits[row + j]); }
  var s = 0.0;
  for (var j = 0u; j < p.c; j++) { s += exp(logits[row + j] - m); }
  let log_s = log(s);
  for (var j = 0u; j < p.c; j++) { logp[row + j] = (logits[row + j] - m) - log_s; }
}
