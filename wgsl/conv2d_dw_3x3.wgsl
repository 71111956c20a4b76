// conv2d dW for 3×3 kernels, stride 1, pad 1 (the network's main convolution); include
// conv2d_dw_common.wgsl first (grid, tasks, partial sums). One invocation: 8 output channels ×
// 1 input channel × 9 taps (72 accumulators). A task is one output column j over a block of
// rows; down the column a 3-row sliding window of x is kept, so each row costs 3 x loads +
// 8 dy loads for 72 FMAs. Lanes take consecutive columns: contiguous loads.

@compute @workgroup_size(8, 8)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
  let pair = pair_index(wid, nwg, lid);
  if (pair >= p.pairs) { return; }
  let c = pair % p.c_in;
  let o0 = (pair / p.c_in) * 8u;
  let stream = stream_index(wid, lid);
  let hw = p.h * p.w;
  var dyOff: array<u32, 8>;
  for (var k = 0u; k < 8u; k++) { dyOff[k] = min(o0 + k, p.c_out - 1u) * hw; }
  var acc: array<f32, 72>;
  for (var step = 0u; step < p.per_group; step++) {
    let t = task_index(wid, lid, step);
    if (t >= p.tasks) { break; }
    let j = t % p.w;
    let blk = t / p.w;
    let n = blk / p.blocks_per_image;
    let i0 = (blk % p.blocks_per_image) * p.row_block;
    let i1 = min(i0 + p.row_block, p.h);
    let xc = p.x_base + (n * p.c_in + c) * hw;
    let dyn = p.dy_base + n * p.c_out * hw + j;
    let okL = j > 0u;
    let okR = j + 1u < p.w;
    let jl = select(0u, j - 1u, okL);
    let jr = select(j, j + 1u, okR);
    var win: array<f32, 9>;
    let top = i0 > 0u;
    let rt = xc + select(0u, i0 - 1u, top) * p.w;
    win[0] = select(0.0, x[rt + jl], top && okL);
    win[1] = select(0.0, x[rt + j], top);
    win[2] = select(0.0, x[rt + jr], top && okR);
    let rm = xc + i0 * p.w;
    win[3] = select(0.0, x[rm + jl], okL);
    win[4] = x[rm + j];
    win[5] = select(0.0, x[rm + jr], okR);
    for (var i = i0; i < i1; i++) {
      let bot = i + 1u < p.h;
      let rb = xc + select(i, i + 1u, bot) * p.w;
      win[6] = select(0.0, x[rb + jl], bot && okL);
      win[7] = select(0.0, x[rb + j], bot);
      win[8] = select(0.0, x[rb + jr], bot && okR);
      let dyi = dyn + i * p.w;
      for (var k = 0u; k < 8u; k++) {
        let g = dy[dyi + dyOff[k]];
        for (var q = 0u; q < 9u; q++) { acc[k * 9u + q] = fma(g, win[q], acc[k * 9u + q]); }
      }
      for (var q = 0u; q < 6u; q++) { win[q] = win[q + 3u]; }
    }
  }
  for (var k = 0u; k < 8u; k++) {
    if (o0 + k < p.c_out) {
      let base = stream * p.weights + ((o0 + k) * p.c_in + c) * 9u;
      for (var q = 0u; q < 9u; q++) { partial[base + q] = acc[k * 9u + q]; }
    }
  }
}
