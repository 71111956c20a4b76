// Patch extraction with the 8 dihedral variants (MODEL-SPEC "Patch extraction"; write-up's
// ExtractPatches): patch k of the list lies at (px, py) = (k mod per_row, k div per_row) and covers
// [px·stride, px·stride + size) × [py·stride, py·stride + size) of an RGB8 interleaved image read as
// packed u32 words. Output [count, 3, size, size] f32 = byte / 255. Variant v: v & 3 counter-clockwise
// quarter turns (numpy.rot90 over (H, W)), then if v & 4 a horizontal flip (reverse W).
// (shift_x, shift_y) moves every patch of the dispatch off its grid origin (random-crop
// augmentation); the launcher checks that the moved patches stay inside the image.
// One invocation per output pixel (all three channels).

struct Params {
  width: u32,     // image width in pixels
  height: u32,
  size: u32,      // patch side
  stride: u32,
  per_row: u32,   // patches per image row
  first: u32,     // patch index of this chunk's first patch
  count: u32,     // patches in this chunk
  variant: u32,   // 0..7
  out_base: u32,  // f32 offset of this chunk inside the bound output range
  shift_x: i32,   // pixels added to every patch origin (0: the grid)
  shift_y: i32,
  _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> image: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

override WG: u32 = 256u;

fn image_byte(index: u32) -> f32 {
  let word = image[index >> 2u];
  return f32((word >> ((index & 3u) * 8u)) & 0xffu);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.x + wid.y * nwg.x) * WG + lid;
  let s = p.size;
  let pix = s * s;
  if (idx >= p.count * pix) { return; }
  let k = idx / pix;
  let rem = idx % pix;
  let i = rem / s;
  var j = rem % s;
  if ((p.variant & 4u) != 0u) { j = s - 1u - j; }
  var r: u32;
  var c: u32;
  switch (p.variant & 3u) {
    case 0u: { r = i; c = j; }
    case 1u: { r = j; c = s - 1u - i; }
    case 2u: { r = s - 1u - i; c = s - 1u - j; }
    default: { r = s - 1u - j; c = i; }
  }
  let q = p.first + k;
  let y = u32(i32((q / p.per_row) * p.stride + r) + p.shift_y);
  let x = u32(i32((q % p.per_row) * p.stride + c) + p.shift_x);
  let src = (y * p.width + x) * 3u;
  let dst = p.out_base + k * 3u * pix + rem;
  out[dst] = image_byte(src) / 255.0;
  out[dst + pix] = image_byte(src + 1u) / 255.0;
  out[dst + 2u * pix] = image_byte(src + 2u) / 255.0;
}
