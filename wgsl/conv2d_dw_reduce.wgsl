// Sums the partial results of the conv2d dW / db kernels in a fixed order (deterministic):
//   out[w] = (accumulate ? out[w] : 0) + Σ_{s < streams} partial[s·count + w]
// `accumulate` lets batch chunks add into the same result one after another.

struct Params {
  count: u32,       // values per partial (weights, or output channels for db)
  streams: u32,     // partials to add
  accumulate: u32,  // 1: add to out, 0: overwrite it
  _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

override WG: u32 = 64;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let w = (wid.x + wid.y * nwg.x) * WG + lid;
  if (w >= p.count) { return; }
  var acc = 0.0;
  for (var s = 0u; s < p.streams; s++) { acc += partial[s * p.count + w]; }
  if (p.accumulate != 0u) { acc += out[w]; }
  out[w] = acc;
}
