// The adapter's ceilings, for the benchmark: `fma` keeps 16 independent accumulators busy with
// straight-line fused multiply-adds (no loads); `copy` streams vec4s from one buffer to another.

struct Params {
  n: u32,        // vec4 elements to copy (copy) / invocations (fma)
  rounds: u32,   // loop rounds of 16×8 FMAs (fma)
  seed: f32,
  _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> src: array<vec4<f32>>;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn fma_peak(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  let m = p.seed;
  var a0 = f32(i + 0u) * 1e-7;
  var a1 = f32(i + 1u) * 1e-7;
  var a2 = f32(i + 2u) * 1e-7;
  var a3 = f32(i + 3u) * 1e-7;
  var a4 = f32(i + 4u) * 1e-7;
  var a5 = f32(i + 5u) * 1e-7;
  var a6 = f32(i + 6u) * 1e-7;
  var a7 = f32(i + 7u) * 1e-7;
  var a8 = f32(i + 8u) * 1e-7;
  var a9 = f32(i + 9u) * 1e-7;
  var a10 = f32(i + 10u) * 1e-7;
  var a11 = f32(i + 11u) * 1e-7;
  var a12 = f32(i + 12u) * 1e-7;
  var a13 = f32(i + 13u) * 1e-7;
  var a14 = f32(i + 14u) * 1e-7;
  var a15 = f32(i + 15u) * 1e-7;
  for (var r = 0u; r < p.rounds; r++) {
    for (var rep = 0u; rep < 8u; rep++) {
      a0 = fma(a0, m, 0.5); a1 = fma(a1, m, 0.5); a2 = fma(a2, m, 0.5); a3 = fma(a3, m, 0.5);
      a4 = fma(a4, m, 0.5); a5 = fma(a5, m, 0.5); a6 = fma(a6, m, 0.5); a7 = fma(a7, m, 0.5);
      a8 = fma(a8, m, 0.5); a9 = fma(a9, m, 0.5); a10 = fma(a10, m, 0.5); a11 = fma(a11, m, 0.5);
      a12 = fma(a12, m, 0.5); a13 = fma(a13, m, 0.5); a14 = fma(a14, m, 0.5); a15 = fma(a15, m, 0.5);
    }
  }
  let s = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11 + a12 + a13 + a14 + a15;
  dst[i] = vec4<f32>(s);
}

@compute @workgroup_size(WG)
fn copy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i < p.n) { dst[i] = src[i]; }
}
