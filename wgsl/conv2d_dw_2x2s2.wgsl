// conv2d dW for 2×2 kernels, stride 2, pad 0 (the network's downsampling convolution); include
// conv2d_dw_common.wgsl first. Output pixel (i, j) reads x[2i..2i+1, 2j..2j+1], always inside
// the input, so there are no bounds checks. One invocation: {{CO}} output channels × {{CI}} input
// channels × 4 taps; a task is one output column over a block of rows, lanes take consecutive
// columns; each row costs 4·{{CI}} x loads + {{CO}} dy loads for {{CO}}·{{CI}}·4 FMAs.

const CO: u32 = {{CO}}u;
const CI: u32 = {{CI}}u;

@compute @workgroup_size(8, 8)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
  let pair = pair_index(wid, nwg, lid);
  if (pair >= p.pairs) { return; }
  let cBlocks = (p.c_in + CI - 1u) / CI;
  let c0 = (pair % cBlocks) * CI;
  let o0 = (pair / cBlocks) * CO;
  let stream = stream_index(wid, lid);
  let hw = p.h * p.w;
  let dyPlane = p.ho * p.wo;
  var dyOff: array<u32, CO>;
  for (var k = 0u; k < CO; k++) { dyOff[k] = min(o0 + k, p.c_out - 1u) * dyPlane; }
  var xOff: array<u32, CI>;
  for (var m = 0u; m < CI; m++) { xOff[m] = min(c0 + m, p.c_in - 1u) * hw; }
  var acc: array<f32, CO * CI * 4u>;
  for (var step = 0u; step < p.per_group; step++) {
    let t = task_index(wid, lid, step);
    if (t >= p.tasks) { break; }
    let j = t % p.wo;
    let blk = t / p.wo;
    let n = blk / p.blocks_per_image;
    let i0 = (blk % p.blocks_per_image) * p.row_block;
    let i1 = min(i0 + p.row_block, p.ho);
    let xn = p.x_base + n * p.c_in * hw + 2u * j;
    let dyn = p.dy_base + n * p.c_out * dyPlane + j;
    for (var i = i0; i < i1; i++) {
      let xr = xn + 2u * i * p.w;
      var v: array<f32, CI * 4u>;
      for (var m = 0u; m < CI; m++) {
        let a = xr + xOff[m];
        v[m * 4u] = x[a];
        v[m * 4u + 1u] = x[a + 1u];
        v[m * 4u + 2u] = x[a + p.w];
        v[m * 4u + 3u] = x[a + p.w + 1u];
      }
      let dyi = dyn + i * p.wo;
      for (var k = 0u; k < CO; k++) {
        let g = dy[dyi + dyOff[k]];
        for (var q = 0u; q < CI * 4u; q++) { acc[k * CI * 4u + q] = fma(g, v[q], acc[k * CI * 4u + q]); }
      }
    }
  }
  for (var k = 0u; k < CO; k++) {
    for (var m = 0u; m < CI; m++) {
      if (o0 + k < p.c_out && c0 + m < p.c_in) {
        let base = stream * p.weights + ((o0 + k) * p.c_in + c0 + m) * 4u;
        for (var q = 0u; q < 4u; q++) { partial[base + q] = acc[(k * CI + m) * 4u + q]; }
      }
    }
  }
}
