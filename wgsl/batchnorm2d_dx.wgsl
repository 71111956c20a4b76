// BatchNorm2d backward, the element pass: dx = k·dy + bias + (x − mean)·slope with the per-channel
// coefficients from batchnorm2d_grad_finalize; in eval mode (slope = bias = 0) x is not read.
// The `_relu` variant takes dy through ReLU's mask on the fused output y (DY), as grad_partial.

@group(0) @binding(1) var<storage, read> dy: array<T>;
@group(0) @binding(2) var<storage, read> x: array<T>;
@group(0) @binding(3) var<storage, read> coef: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> dx: array<T>;

@group(0) @binding(5) var<storage, read> y: array<T>;  // `_relu` only: the fused forward's output

fn grad_out(i: u32) -> T {
  return {{DY}};
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = tile_of(wid, nwg);
  if (!t.valid) { return; }
  let q = coef[t.ch];
  let k_dy = T(q.x);
  if (p.training != 0u) {
    let bias = T(q.y);
    let slope = T(q.z);
    for (var k = lid; k < t.count; k += WG) {
      let i = t.row + k;
      dx[i] = fma(x[i] - q.w, slope, fma(k_dy, grad_out(i), bias));
    }
  } else {
    for (var k = lid; k < t.count; k += WG) {
      let i = t.row + k;
      dx[i] = k_dy * grad_out(i);
    }
  }
}
