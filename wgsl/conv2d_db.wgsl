// conv2d db, first stage: db[o] = Σ_n Σ_p dy[n,o,p]. Workgroup (o, slice) adds the pixels
// [slice·seg, slice·seg + seg) of channel o in every image of the chunk, lanes striding by WG,
// then a fixed tree in workgroup memory; it writes partial[slice·c_out + o]. conv2d_dw_reduce
// adds the slices in a fixed order. No atomics: the same dy always gives the same bits.

struct Params {
  n: u32,        // batch items in this chunk
  c_out: u32,
  hw: u32,       // output pixels per channel
  dy_base: u32,  // element offset of the chunk's first item in the dy binding
  seg: u32,      // pixels per slice
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> partial: array<f32>;

override WG: u32 = 64;
var<workgroup> tree: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let o = wid.x;
  let slice = wid.y;
  let start = slice * p.seg;
  let end = min(start + p.seg, p.hw);
  var acc = 0.0;
  for (var n = 0u; n < p.n; n++) {
    let base = p.dy_base + (n * p.c_out + o) * p.hw;
    for (var q = start + lid; q < end; q += WG) { acc += dy[base + q]; }
  }
  tree[lid] = acc;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) { tree[lid] += tree[lid + stride]; }
    workgroupBarrier();
  }
  if (lid == 0u) { partial[slice * p.c_out + o] = tree[0]; }
}
