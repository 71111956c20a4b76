// One Adam step in place (torch.optim.Adam, amsgrad=False, foreach/fused off), element by element:
//   g = grad + wd·param;  m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;
//   denom = sqrt(v) / sqrt(1 − β2^t) + eps;  param += −(lr / (1 − β1^t)) · (m / denom).
// The bias corrections are computed once on the CPU in float64 (src/kernels/adam.ts).

struct Params {
  n: u32,              // elements in this chunk
  beta1: f32,
  one_minus_beta1: f32,
  beta2: f32,
  one_minus_beta2: f32,
  eps: f32,
  weight_decay: f32,
  step_size: f32,      // lr / (1 − β1^t)
  bc2_sqrt: f32,       // sqrt(1 − β2^t)
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;

override WG: u32 = 256u;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= p.n) { return; }
  let w = param[i];
  var g = grad[i];
  if (p.weight_decay != 0.0) { g = g + p.weight_decay * w; }
  let m1 = p.beta1 * m[i] + p.one_minus_beta1 * g;
  let v1 = p.beta2 * v[i] + p.one_minus_beta2 * (g * g);
  let denom = sqrt(v1) / p.bc2_sqrt + p.eps;
  m[i] = m1;
  v[i] = v1;
  param[i] = w + (-p.step_size) * (m1 / denom);
}
