// ReLU forward y = max(x, 0) (NaN passes through, as in PyTorch) and backward dx = dy where y > 0.
// vec4 loads (the fast path on lavapipe); each workgroup walks a block of WG·PER_LANE vec4s with
// its lanes striding by WG. The launcher binds ranges rounded up to whole vec4s — the tail lanes
// touch only the 16-byte padding of pooled buffers.
// Output first (binding 1), as in elementwise.wgsl, so the forward entry uses bindings 1–2 only.

struct Params {
  n4: u32,     // vec4s in this chunk
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<vec4<f32>>;  // forward: y; backward: dx
@group(0) @binding(2) var<storage, read> a: array<vec4<f32>>;         // forward: x; backward: dy
@group(0) @binding(3) var<storage, read> b: array<vec4<f32>>;         // backward: y

override WG: u32 = 64;
override PER_LANE: u32 = 16;

// The vec4s of this workgroup's block: [first, end), lanes start at first + lid.
fn block(wid: vec3<u32>, nwg: vec3<u32>) -> vec2<u32> {
  let first = (wid.x + wid.y * nwg.x) * WG * PER_LANE;
  return vec2<u32>(first, min(first + WG * PER_LANE, p.n4));
}

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
  let r = block(wid, nwg);
  for (var i = r.x + lid; i < r.y; i += WG) {
    let v = a[i];
    out[i] = select(v, vec4<f32>(0.0), v < vec4<f32>(0.0));
  }
}

@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
  let r = block(wid, nwg);
  for (var i = r.x + lid; i < r.y; i += WG) {
    out[i] = select(vec4<f32>(0.0), a[i], b[i] > vec4<f32>(0.0));
  }
}
