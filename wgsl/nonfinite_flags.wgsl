// Non-finite check: each workgroup scans a contiguous segment of `seg` elements of x, ORs one flag
// per element (1 = NaN, 2 = ±Inf, read off the IEEE-754 bits, so a compiler that assumes finite
// floats cannot fold it away), reduces the flags over the workgroup in a fixed tree, and ORs the
// result into flags[slot]. Integer OR is order-independent, so the flags are the same every run.

struct Params {
  n: u32,     // elements in x
  seg: u32,   // elements per workgroup (a multiple of WG)
  slot: u32,  // which flag word this array reports into
  _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> flags: array<atomic<u32>>;

override WG: u32 = 256;
var<workgroup> tree: array<u32, WG>;

fn classify(bits: u32) -> u32 {
  if ((bits & 0x7f800000u) != 0x7f800000u) { return 0u; }
  return select(2u, 1u, (bits & 0x007fffffu) != 0u);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let start = (wid.x + wid.y * nwg.x) * p.seg;
  var acc = 0u;
  for (var k = lid; k < p.seg; k += WG) {
    let i = start + k;
    if (i < p.n) { acc |= classify(x[i]); }
  }
  tree[lid] = acc;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) { tree[lid] |= tree[lid + stride]; }
    workgroupBarrier();
  }
  if (lid == 0u && tree[0] != 0u) { atomicOr(&flags[p.slot], tree[0]); }
}
