// BatchNorm2d forward, the element pass (train and eval): y = (x − mean[c])·(invStd[c]·γ[c]) + β[c].
// x − mean first, so a large mean cancels exactly before scaling. One tile of one plane per workgroup.
// The `_relu` variant (ACT) writes ReLU(y) instead, saving the separate ReLU pass; select as in
// relu.wgsl (NaN passes, −0 kept), so fused and unfused outputs are the same bits.

@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read> mean: array<f32>;
@group(0) @binding(3) var<storage, read> inv_std: array<f32>;
@group(0) @binding(4) var<storage, read> gamma: array<f32>;
@group(0) @binding(5) var<storage, read> beta: array<f32>;
@group(0) @binding(6) var<storage, read_write> y: array<T>;

fn act(v: T) -> T {
  return {{ACT}};
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = tile_of(wid, nwg);
  if (!t.valid) { return; }
  let mu = mean[t.ch];
  let a = T(inv_std[t.ch] * gamma[t.ch]);
  let b = T(beta[t.ch]);
  for (var k = lid; k < t.count; k += WG) {
    let i = t.row + k;
    y[i] = act(fma(x[i] - mu, a, b));
  }
}
