// Rearranges conv weights W [cOut][cIn][taps] (OIHW, taps = kh·kw) into the blocks that the
// uniform-memory conv kernels (conv2d_fwd_3x3, _2x2s2, _1x1, conv2d_dx_2x2s2) read:
//   block (tile, chunk) at vec4 offset (tile·chunks + chunk)·stride holds
//   packed[((ci − chunk·ciChunk)·taps + tap)·groups + g] = vec4 of W'[tile·4·groups + 4g + 0..3][ci][tap]
// where W' = W, or for the data gradient W' = Wᵀ (in↔out swapped) and, for s1 convs, the taps
// flipped (tap → taps−1−tap: both ky and kx reversed). Entries past the tensor are zero.

struct Params {
  cOut: u32,       // of W as stored
  cIn: u32,
  taps: u32,
  transpose: u32,  // 1: W' = Wᵀ
  flip: u32,       // 1: taps reversed
  outC: u32,       // output channels of W' (cIn when transposed)
  inC: u32,        // input channels of W'
  groups: u32,     // vec4 output-channel groups per tile
  ciChunk: u32,    // input channels per chunk
  chunks: u32,     // chunks per tile
  stride: u32,     // vec4 elements between blocks (a multiple of 16: 256-byte aligned)
  total: u32,      // vec4 elements written
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> packed: array<vec4<f32>>;

override WG: u32 = 256;

fn weight(o: u32, ci: u32, tap: u32, ok: bool) -> f32 {
  if (!ok || o >= p.outC) { return 0.0; }
  let t = select(tap, p.taps - 1u - tap, p.flip == 1u);
  if (p.transpose == 1u) { return w[(ci * p.cIn + o) * p.taps + t]; }
  return w[(o * p.cIn + ci) * p.taps + t];
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= p.total) { return; }
  let block = i / p.stride;
  let within = i % p.stride;
  let tile = block / p.chunks;
  let chunk = block % p.chunks;
  let g = within % p.groups;
  let rest = within / p.groups;
  let tap = rest % p.taps;
  let local = rest / p.taps;
  let ci = chunk * p.ciChunk + local;
  let ok = local < p.ciChunk && ci < p.inC;
  let o = (tile * p.groups + g) * 4u;
  packed[i] = vec4<f32>(weight(o, ci, tap, ok), weight(o + 1u, ci, tap, ok),
                        weight(o + 2u, ci, tap, ok), weight(o + 3u, ci, tap, ok));
}
