// BatchNorm2d training forward, stage 2: one workgroup per channel merges that channel's partial
// (mean, M2, count) triples with Chan et al.'s pairwise update — each lane a fixed strided run,
// then a fixed tree — and writes the batch mean, invStd = 1/√(var + eps) (biased var = M2/m) and
// PyTorch's running-stat update: running = (1 − momentum)·running + momentum·stat, with the
// UNBIASED variance M2/(m − 1) for running_var.

@group(0) @binding(1) var<storage, read> partial: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> mean: array<f32>;
@group(0) @binding(3) var<storage, read_write> inv_std: array<f32>;
@group(0) @binding(4) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(5) var<storage, read_write> running_var: array<f32>;

var<workgroup> tree: array<vec3<f32>, WG>;

// Merges two (mean, M2, count) summaries.
fn chan(a: vec3<f32>, b: vec3<f32>) -> vec3<f32> {
  if (b.z == 0.0) { return a; }
  if (a.z == 0.0) { return b; }
  let count = a.z + b.z;
  let delta = b.x - a.x;
  let wb = b.z / count;
  return vec3<f32>(a.x + delta * wb, a.y + b.y + delta * delta * a.z * wb, count);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let ch = wid.x + wid.y * nwg.x;
  if (ch >= p.c) { return; }
  let first = ch * p.parts;
  var acc = vec3<f32>(0.0);
  for (var k = lid; k < p.parts; k += WG) {
    acc = chan(acc, partial[first + k].xyz);
  }
  tree[lid] = acc;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) { tree[lid] = chan(tree[lid], tree[lid + stride]); }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let total = tree[0];
    let m = total.z;
    let batch_var = total.y / m;
    mean[ch] = total.x;
    inv_std[ch] = 1.0 / sqrt(batch_var + p.eps);
    let keep = 1.0 - p.momentum;
    running_mean[ch] = keep * running_mean[ch] + p.momentum * total.x;
    running_var[ch] = keep * running_var[ch] + p.momentum * (total.y / (m - 1.0));
  }
}
