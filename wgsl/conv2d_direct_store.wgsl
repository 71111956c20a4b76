// How the direct conv2d forward kernels (conv2d_fwd_3x3, conv2d_fwd_2x2s2[_sg]) store their
// outputs, pasted after conv2d_direct_params.wgsl through the kernel's `include`; each kernel
// declares the bindings `bias` and `y` (WGSL module scope is order-free). The first block of input
// channels writes b + v, later blocks add v to y: a fixed order, so the same bits every run.

// The bias of output channels co … co + channels − 1 for the first input block, zero after it.
fn firstBias(co: u32, channels: u32) -> vec4<f32> {
  var b = vec4<f32>(0.0);
  if (p.hasBias == 1u && p.accumulate == 0u) {
    for (var c = 0u; c < 4u; c++) {
      if (c < channels) { b[c] = bias[co + c]; }
    }
  }
  return b;
}

// Stores 4 output channels of one pixel: y = b + v from the first input block, y += v after.
fn put(i: u32, ox: u32, channels: u32, b: vec4<f32>, v: vec4<f32>) {
  if (ox >= p.wo) { return; }
  let plane = p.ho * p.wo;
  for (var c = 0u; c < 4u; c++) {
    if (c < channels) {
      let k = i + c * plane;
      var prev = b[c];
      if (p.accumulate == 1u) { prev = y[k]; }
      y[k] = prev + v[c];
    }
  }
}
