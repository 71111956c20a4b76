// The tile walk of the per-tile batchnorm2d kernels (pasted after batchnorm2d_common): each
// workgroup takes one tile of one plane, so the channel is a per-workgroup constant and no lane
// divides. Tensors are read as T = {{T}}: vec4<f32> when H·W is a multiple of 4 (every plane
// then starts on a vec4), else f32; WIDTH floats per T, `total` adds a T's floats.

alias T = {{T}};
const WIDTH: u32 = {{WIDTH}}u;

fn total(v: T) -> f32 {
  return {{TOTAL}};
}

struct Tile {
  valid: bool,
  ch: u32,       // channel
  n: u32,        // sample index in the whole batch
  index: u32,    // tile within its plane
  row: u32,      // index (in T) of the tile's first element in the bound range
  count: u32,    // T elements in this tile
}

fn tile_of(wid: vec3<u32>, nwg: vec3<u32>) -> Tile {
  var t: Tile;
  let group = wid.x + wid.y * nwg.x;
  t.valid = group < p.planes * p.tiles;
  let plane = group / p.tiles;
  t.index = group - plane * p.tiles;
  t.ch = plane % p.c;
  t.n = p.n0 + plane / p.c;
  let start = t.index * p.tile;
  t.count = select(0u, min(p.tile, p.hw - start) / WIDTH, t.valid);
  t.row = (p.base + plane * p.hw + start) / WIDTH;
  return t;
}

fn partial_index(t: Tile) -> u32 {
  return (t.ch * p.n_total + t.n) * p.tiles + t.index;
}
