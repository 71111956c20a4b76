// Inverted dropout with a counter-based mask: element i of a launch is kept when
//   (hash(seed, offset + i) >> 8) >= threshold,  threshold = round(p·2²⁴),
// where hash is two rounds of Chris Wellons' `lowbias32` 32-bit integer mix keyed by the seed.
// Integer-only, so the CPU twin (dropoutMaskRef in src/kernels/dropout.ts) gives the same bits.
// Kept values are scaled by 1/(1 − p); the backward recomputes the same mask from (seed, offset).
// vec4s walked in blocks of WG·PER_LANE per workgroup; ranges bound rounded up to whole vec4s (see relu.wgsl).

struct Params {
  n4: u32,         // vec4s in this chunk
  threshold: u32,  // round(p·2²⁴)
  seed: u32,
  offset: u32,     // counter of this chunk's first element (wraps mod 2³²)
  scale: f32,      // 1/(1 − p)
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<vec4<f32>>;  // forward: y; backward: dx
@group(0) @binding(2) var<storage, read> a: array<vec4<f32>>;         // forward: x; backward: dy

override WG: u32 = 64;
override PER_LANE: u32 = 16;

fn lowbias32(v: u32) -> u32 {
  var h = v;
  h ^= h >> 16u;
  h *= 0x7feb352du;
  h ^= h >> 15u;
  h *= 0x846ca68bu;
  h ^= h >> 16u;
  return h;
}

fn keep_scale(counter: u32, key: u32) -> f32 {
  let h = lowbias32(lowbias32(counter ^ key) + p.seed);
  return select(0.0, p.scale, (h >> 8u) >= p.threshold);
}

// Both directions multiply by the same mask·scale: y = x·m, dx = dy·m.
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let first = (wid.x + wid.y * nwg.x) * WG * PER_LANE;
  let end = min(first + WG * PER_LANE, p.n4);
  let key = lowbias32(p.seed ^ 0x9e3779b9u);
  for (var i = first + lid; i < end; i += WG) {
    let c = p.offset + 4u * i;
    let m = vec4<f32>(keep_scale(c, key), keep_scale(c + 1u, key), keep_scale(c + 2u, key), keep_scale(c + 3u, key));
    out[i] = a[i] * m;
  }
}
