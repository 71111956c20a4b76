// BatchNorm2d backward, stage 2: one workgroup per channel sums the partials in a fixed order:
// dBeta = Σ dy, dGamma = invStd·Σ dy·(x − mean) = Σ dy·x̂. It also writes the per-channel
// coefficients of dx (batchnorm2d_dx): with k = γ·invStd and m = N·H·W,
//   training: dx = k·dy − k·dBeta/m − (x − mean)·k·invStd·dGamma/m
//             (= γ·invStd/m·(m·dy − Σdy − x̂·Σ dy·x̂), the batch-statistics gradient)
//   eval:     dx = k·dy (statistics frozen).

@group(0) @binding(1) var<storage, read> partial: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> mean: array<f32>;
@group(0) @binding(4) var<storage, read> inv_std: array<f32>;
@group(0) @binding(5) var<storage, read_write> d_gamma: array<f32>;
@group(0) @binding(6) var<storage, read_write> d_beta: array<f32>;
@group(0) @binding(7) var<storage, read_write> coef: array<vec4<f32>>;  // (k, bias, slope, mean)

var<workgroup> tree: array<vec2<f32>, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let ch = wid.x + wid.y * nwg.x;
  if (ch >= p.c) { return; }
  let first = ch * p.parts;
  var acc = vec2<f32>(0.0);
  for (var k = lid; k < p.parts; k += WG) { acc += partial[first + k]; }
  tree[lid] = acc;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) { tree[lid] += tree[lid + stride]; }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let r = inv_std[ch];
    let db = tree[0].x;
    let dg = tree[0].y * r;
    d_gamma[ch] = dg;
    d_beta[ch] = db;
    let k = gamma[ch] * r;
    let m = f32(p.n_total) * f32(p.hw);
    let train = f32(p.training);
    coef[ch] = vec4<f32>(k, -train * k * db / m, -train * k * r * dg / m, mean[ch]);
  }
}
