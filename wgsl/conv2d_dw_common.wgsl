// Shared by the conv2d dW kernels (pasted before each one through the kernel's `include`):
// the uniform block, the bindings and the decoding of a workgroup's place in the grid.
//
// Every dW kernel reduces dW[o,c,ky,kx] = Σ_n Σ_i Σ_j dy[n,o,i,j] · x[n,c,i·s+ky−p, j·s+kx−p]
// over one batch chunk. A workgroup is 8×8 invocations: its rows (local y) take 8 blocks of
// weights ("pairs": input channel, output-channel block, tap block — the kernel decides), its
// lanes (local x) 8 streams; grid x·y counts pair blocks, grid z groups of 8 streams. Group g
// owns the contiguous tasks [g·per_group·8, (g+1)·per_group·8) and lane l takes every 8th of
// them from l (`task_index`): the lanes' loads are contiguous and a group walks its part of the
// image in order, which keeps it in cache (3× faster than striding tasks over all streams at
// 512²). Stream g·8 + l writes its own partial dW at partial[(g·8 + l)·weights + …];
// conv2d_dw_reduce adds the streams in a fixed order. No atomics, and no workgroup barriers
// (slow on lavapipe): the same inputs always give the same bits.

struct Params {
  n: u32,                 // batch items in this chunk
  c_in: u32,
  h: u32,
  w: u32,
  c_out: u32,
  ho: u32,
  wo: u32,
  stride: u32,
  pad: u32,
  kh: u32,
  kw: u32,
  x_base: u32,            // element offset of the chunk's first item in the x binding
  dy_base: u32,           // same for dy
  row_block: u32,         // output rows per task
  blocks_per_image: u32,  // ceil(ho / row_block)
  tasks: u32,             // n · blocks_per_image · wo (1×1 kernel: pixels per image)
  streams: u32,           // 8 · groups
  weights: u32,           // c_out · c_in · kh · kw: the stride between partials
  pairs: u32,             // weight blocks (8 per workgroup)
  per_group: u32,         // task octets per stream group
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> partial: array<f32>;

fn pair_index(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
  return (wid.x + wid.y * nwg.x) * 8u + lid.y;
}

fn stream_index(wid: vec3<u32>, lid: vec3<u32>) -> u32 {
  return wid.z * 8u + lid.x;
}

// The step-th task of this invocation's stream (valid while < p.tasks).
fn task_index(wid: vec3<u32>, lid: vec3<u32>, step: u32) -> u32 {
  return (wid.z * p.per_group + step) * 8u + lid.x;
}

