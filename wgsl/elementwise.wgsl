// Element-wise ops over flat f32 arrays, used by the autograd tape (gradient accumulation,
// scaling, zeroing). One invocation per element; the flat index spans a 2-D grid of workgroups.
// A launcher splits arrays larger than one storage binding into aligned chunks.

struct Params {
  n: u32,        // elements in this chunk
  alpha: f32,    // scale factor (axpy, scale) or fill value
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;

override WG: u32 = 256;

fn flat_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * WG + lid;
}

// y = alpha
@compute @workgroup_size(WG)
fn fill(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wid, nwg, lid);
  if (i < p.n) { y[i] = p.alpha; }
}

// y += alpha * x   (the tape's gradient accumulation)
@compute @workgroup_size(WG)
fn axpy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wid, nwg, lid);
  if (i < p.n) { y[i] = fma(p.alpha, x[i], y[i]); }
}

// y = alpha * x
@compute @workgroup_size(WG)
fn scale(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wid, nwg, lid);
  if (i < p.n) { y[i] = p.alpha * x[i]; }
}
