// conv2d dW for 1×1 kernels, stride 1, pad 0 (the networks' final convolution): a GEMM
// dW[o,c] = Σ_n Σ_p dy[n,o,p] · x[n,c,p] over all batch pixels; include conv2d_dw_common.wgsl
// first. One invocation: {{CO}} output channels × {{CI}} input channels; a task is one pixel
// of every image of the chunk (lanes: consecutive pixels, contiguous loads); each pixel costs
// {{CO}} + {{CI}} loads for {{CO}}·{{CI}} FMAs.

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
  var dyOff: array<u32, CO>;
  for (var k = 0u; k < CO; k++) { dyOff[k] = min(o0 + k, p.c_out - 1u) * hw; }
  var xOff: array<u32, CI>;
  for (var m = 0u; m < CI; m++) { xOff[m] = min(c0 + m, p.c_in - 1u) * hw; }
  var acc: array<f32, CO * CI>;
  for (var n = 0u; n < p.n; n++) {
    let xn = p.x_base + n * p.c_in * hw;
    let dyn = p.dy_base + n * p.c_out * hw;
    for (var step = 0u; step < p.per_group; step++) {
      let q = task_index(wid, lid, step);
      if (q >= hw) { break; }
      var v: array<f32, CI>;
      for (var m = 0u; m < CI; m++) { v[m] = x[xn + xOff[m] + q]; }
      for (var k = 0u; k < CO; k++) {
        let g = dy[dyn + dyOff[k] + q];
        for (var m = 0u; m < CI; m++) { acc[k * CI + m] = fma(g, v[m], acc[k * CI + m]); }
      }
    }
  }
  for (var k = 0u; k < CO; k++) {
    for (var m = 0u; m < CI; m++) {
      if (o0 + k < p.c_out && c0 + m < p.c_in) {
        partial[stream * p.weights + (o0 + k) * p.c_in + c0 + m] = acc[k * CI + m];
      }
    }
  }
}
