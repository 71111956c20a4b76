// BatchNorm2d backward, stage 1: per tile of one plane, Σ dy and Σ dy·(x − mean) (times invStd in
// stage 2 this is Σ dy·x̂); lane 0 adds the lanes' sums in a fixed order. No atomics.
// The `_relu` variant (BN followed by ReLU, fused) reads the fused output y and masks dy where
// y ≤ 0 on the fly (DY), instead of a separate ReLU-backward pass writing a masked dy.

@group(0) @binding(1) var<storage, read> dy: array<T>;
@group(0) @binding(2) var<storage, read> x: array<T>;
@group(0) @binding(3) var<storage, read> mean: array<f32>;
@group(0) @binding(4) var<storage, read_write> partial: array<vec2<f32>>;  // (Σ dy, Σ dy·(x − mean))

@group(0) @binding(5) var<storage, read> y: array<T>;  // `_relu` only: the fused forward's output

fn grad_out(i: u32) -> T {
  return {{DY}};
}

var<workgroup> lanes: array<vec2<f32>, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = tile_of(wid, nwg);
  if (!t.valid) { return; }
  let mu = mean[t.ch];
  var s = T(0.0);
  var sx = T(0.0);
  for (var k = lid; k < t.count; k += WG) {
    let g = grad_out(t.row + k);
    s += g;
    sx = fma(g, x[t.row + k] - mu, sx);
  }
  lanes[lid] = vec2<f32>(total(s), total(sx));
  workgroupBarrier();
  if (lid == 0u) {
    var sum = vec2<f32>(0.0);
    for (var k = 0u; k < WG; k++) { sum += lanes[k]; }
    partial[partial_index(t)] = sum;
  }
}
