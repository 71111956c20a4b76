// Deterministic sum: each workgroup adds a contiguous segment of `seg` elements in a fixed tree
// order and writes one partial; the launcher repeats until one value is left. No atomics, so the
// same input always gives the same bits.

struct Params {
  n: u32,     // elements in x
  seg: u32,   // elements per workgroup (a multiple of WG)
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> partial: array<f32>;

override WG: u32 = 256;
var<workgroup> tree: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let group = wid.x + wid.y * nwg.x;
  let start = group * p.seg;
  var acc = 0.0;
  for (var k = lid; k < p.seg; k += WG) {
    let i = start + k;
    if (i < p.n) { acc += x[i]; }
  }
  tree[lid] = acc;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) { tree[lid] += tree[lid + stride]; }
    workgroupBarrier();
  }
  if (lid == 0u && start < p.n) { partial[group] = tree[0]; }
}
