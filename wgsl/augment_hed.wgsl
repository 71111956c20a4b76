// HED stain augmentation (Tellez et al. 2019) of patches [count, 3, size, size] in [0, 1], one
// invocation per pixel (three channels). Colour deconvolution with Ruifrok & Johnston's H&E-DAB
// matrix (scikit-image's rgb_from_hed, rows H, E, D):
//   od = −ln(max(c, 1/255))           optical density per RGB channel (1/255: one 8-bit step)
//   s  = od · HED_FROM_RGB            stain concentrations (row vector times the inverse matrix)
//   s' = α ⊙ s + β                    per patch k: α = params[6k .. 6k+3), β = params[6k+3 .. 6k+6)
//   c' = clamp(exp(−s' · RGB_FROM_HED), 0, 1)
// The matrices are passed in `m` (18 f32: rgb_from_hed then hed_from_rgb, row-major) so the CPU
// reference and the kernel use the same f32 values. Chunks as augment_colour.wgsl: `base` is the
// f32 offset of the chunk's first patch in the bound ranges, `first` its patch index in params.

struct Params {
  count: u32,
  pix: u32,
  base: u32,
  first: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> patches: array<f32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read> m: array<f32, 18>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

override WG: u32 = 256u;

fn row(i: u32) -> vec3<f32> {
  return vec3<f32>(m[3u * i], m[3u * i + 1u], m[3u * i + 2u]);
}

@compute @workgroup_size(WG)
fn hed_apply(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.x + wid.y * nwg.x) * WG + lid;
  if (idx >= p.count * p.pix) { return; }
  let k = idx / p.pix;
  let i = idx % p.pix;
  let at = p.base + k * 3u * p.pix + i;
  let c = vec3<f32>(patches[at], patches[at + p.pix], patches[at + 2u * p.pix]);
  let od = -log(max(c, vec3<f32>(1.0 / 255.0)));
  // s_j = Σ_i od_i · hed_from_rgb[i][j]: rows 3..5 of m.
  let s = od.x * row(3u) + od.y * row(4u) + od.z * row(5u);
  let g = 6u * (p.first + k);
  let alpha = vec3<f32>(params[g], params[g + 1u], params[g + 2u]);
  let beta = vec3<f32>(params[g + 3u], params[g + 4u], params[g + 5u]);
  let t = alpha * s + beta;
  let od2 = t.x * row(0u) + t.y * row(1u) + t.z * row(2u);
  let c2 = clamp(exp(-od2), vec3<f32>(0.0), vec3<f32>(1.0));
  out[at] = c2.x;
  out[at + p.pix] = c2.y;
  out[at + 2u * p.pix] = c2.z;
}
