// BatchNorm2d eval mode: the frozen statistics as the kernels use them, mean = running_mean and
// invStd = 1/√(running_var + eps). One invocation per channel.

@group(0) @binding(1) var<storage, read> running_mean: array<f32>;
@group(0) @binding(2) var<storage, read> running_var: array<f32>;
@group(0) @binding(3) var<storage, read_write> mean: array<f32>;
@group(0) @binding(4) var<storage, read_write> inv_std: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let ch = (wid.x + wid.y * nwg.x) * WG + lid;
  if (ch >= p.c) { return; }
  mean[ch] = running_mean[ch];
  inv_std[ch] = 1.0 / sqrt(running_var[ch] + p.eps);
}
