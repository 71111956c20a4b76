// Shared by every batchnorm2d_*.wgsl kernel (pasted first through `include`): the uniform block.
// An NCHW tensor is a sequence of N·C planes of H·W contiguous floats; plane `n·C + c` belongs to
// channel c. A launch of a per-tile kernel covers one chunk of the batch (samples n0 ..
// n0 + planes/C) whose first element sits `base` floats into the bound range (binding offsets are
// 256-byte multiples). Partial statistics are indexed (channel, sample, tile) for every chunking.

struct Params {
  hw: u32,        // H·W
  c: u32,         // channels
  planes: u32,    // planes in this chunk (samples in the chunk · C)
  tiles: u32,     // tiles per plane
  tile: u32,      // floats in a full tile (a multiple of WIDTH)
  base: u32,      // float offset of the chunk inside the bound range of x / y / dy / dx
  n_total: u32,   // N of the whole batch
  n0: u32,        // first sample of this chunk
  parts: u32,     // partials per channel: n_total·tiles, ordered (sample, tile)
  training: u32,  // 1: batch statistics, 0: frozen running statistics
  eps: f32,
  momentum: f32,
}

@group(0) @binding(0) var<uniform> p: Params;

override WG: u32 = 64;
