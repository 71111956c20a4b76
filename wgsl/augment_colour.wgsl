// Colour augmentation of patches [count, 3, size, size] in [0, 1] with PIL ImageEnhance semantics
// (the original code's Color → Contrast → Brightness), per patch k with factors
// f = factors[3k .. 3k + 3) = (colour, contrast, brightness), clamped to [0, 1] after each step as
// PIL's 8-bit images are (without PIL's rounding to 8 bits):
//   Color:      c1 = clamp(L + f.x·(c − L)),  L = 0.299 R + 0.587 G + 0.114 B of the pixel
//   Contrast:   c2 = clamp(m + f.y·(c1 − m)), m = mean over the patch of the grayscale of c1
//   Brightness: c3 = clamp(f.z·c2)
// `colour_mean` computes m: one workgroup per patch, a fixed-order tree (no atomics, so the same
// input gives the same bits). `colour_apply` writes c3: one invocation per pixel (three channels).
// Patches are processed in chunks that fit one storage binding: `base` is the f32 offset of the
// chunk's first patch inside the bound ranges, `first` its patch index in factors and means.

struct Params {
  count: u32,  // patches in this chunk
  pix: u32,    // size·size
  base: u32,
  first: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

override WG: u32 = 256u;

const LUMA = vec3<f32>(0.299, 0.587, 0.114);

fn colour_step(c: vec3<f32>, f: f32) -> vec3<f32> {
  let l = dot(c, LUMA);
  return clamp(vec3<f32>(l) + f * (c - vec3<f32>(l)), vec3<f32>(0.0), vec3<f32>(1.0));
}

fn load_pixel(k: u32, i: u32) -> vec3<f32> {
  let at = p.base + k * 3u * p.pix + i;
  return vec3<f32>(patches[at], patches[at + p.pix], patches[at + 2u * p.pix]);
}

@group(0) @binding(1) var<storage, read> patches: array<f32>;
@group(0) @binding(2) var<storage, read> factors: array<f32>;
// Written by colour_mean, read by colour_apply (one module: read_write in both layouts).
@group(0) @binding(3) var<storage, read_write> means: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

var<workgroup> tree: array<f32, WG>;

@compute @workgroup_size(WG)
fn colour_mean(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
  let k = wid.x + wid.y * nwg.x;
  if (k >= p.count) { return; }
  let f = factors[3u * (p.first + k)];
  var acc = 0.0;
  for (var i = lid; i < p.pix; i += WG) {
    acc += dot(colour_step(load_pixel(k, i), f), LUMA);
  }
  tree[lid] = acc;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) { tree[lid] += tree[lid + stride]; }
    workgroupBarrier();
  }
  if (lid == 0u) { means[p.first + k] = tree[0] / f32(p.pix); }
}

@compute @workgroup_size(WG)
fn colour_apply(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.x + wid.y * nwg.x) * WG + lid;
  if (idx >= p.count * p.pix) { return; }
  let k = idx / p.pix;
  let i = idx % p.pix;
  let g = 3u * (p.first + k);
  let m = means[p.first + k];
  let c1 = colour_step(load_pixel(k, i), factors[g]);
  let c2 = clamp(vec3<f32>(m) + factors[g + 1u] * (c1 - vec3<f32>(m)), vec3<f32>(0.0), vec3<f32>(1.0));
  let c3 = clamp(factors[g + 2u] * c2, vec3<f32>(0.0), vec3<f32>(1.0));
  let at = p.base + k * 3u * p.pix + i;
  out[at] = c3.x;
  out[at + p.pix] = c3.y;
  out[at + 2u * p.pix] = c3.z;
}
