// Negative log-likelihood on log-probabilities and the fused backward of NLL(log_softmax(z)),
// with optional label smoothing ε (torch's CrossEntropyLoss(label_smoothing=ε)): the target is
// q = (1 − ε)·onehot(t) + ε/c, and the loss −Σ_j q_j·logp_j.
// `nll_rows`: loss_i = −((1 − ε)·logp[i, t_i] + (ε/c)·Σ_j logp[i, j]) / n (the launcher sums them
// with reduce_sum.wgsl: the mean).
// `backward`: dz[i,j] = scale · (exp(logp[i,j]) − q[i,j]), scale = dLoss / n, since
// ∂/∂z_j (−Σ_k q_k log softmax(z)_k) = softmax(z)_j − q_j (Σ_k q_k = 1). A target ≥ c gives NaN
// (as a visible error).

struct Params {
  n: u32,      // rows
  c: u32,      // classes
  scale: f32,  // 1/n (nll_rows) or dLoss/n (backward)
  invalid: f32,  // NaN, written for a target ≥ c (a NaN constant is a WGSL compile error)
  smoothing: f32,  // ε in [0, 1)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logp: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

override WG: u32 = 64u;

@compute @workgroup_size(WG)
fn nll_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= p.n) { return; }
  let t = targets[i];
  if (t >= p.c) { out[i] = p.invalid; return; }
  var loss = -logp[i * p.c + t];
  if (p.smoothing != 0.0) {
    var total = 0.0;
    for (var j = 0u; j < p.c; j++) { total += logp[i * p.c + j]; }
    loss = (1.0 - p.smoothing) * loss - p.smoothing * total / f32(p.c);
  }
  out[i] = loss * p.scale;
}

@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
  let k = (wid.x + wid.y * nwg.x) * WG + lid;
  if (k >= p.n * p.c) { return; }
  let i = k / p.c;
  let j = k % p.c;
  let t = targets[i];
  if (t >= p.c) { out[k] = p.invalid; return; }
  let onehot = select(0.0, 1.0, j == t);
  let q = select((1.0 - p.smoothing) * onehot + p.smoothing / f32(p.c), onehot, p.smoothing == 0.0);
  out[k] = p.scale * (exp(logp[k]) - q);
}
