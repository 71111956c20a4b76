// conv2d dW for any kernel size, stride and padding; include conv2d_dw_common.wgsl first.
// One invocation: {{CO}} output channels × 1 input channel × 4 taps of the kh·kw kernel
// ({{CO}}·4 accumulators). A task is one output column j over a block of rows; each row costs
// 4 x loads (zero outside the input) + {{CO}} dy loads. Lanes take consecutive columns.

const CO: u32 = {{CO}}u;
const TB: u32 = 4u;

@compute @workgroup_size(8, 8)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
  let pair = pair_index(wid, nwg, lid);
  if (pair >= p.pairs) { return; }
  let taps = p.kh * p.kw;
  let oBlocks = (p.c_out + CO - 1u) / CO;
  let c = pair % p.c_in;
  let o0 = ((pair / p.c_in) % oBlocks) * CO;
  let q0 = (pair / (p.c_in * oBlocks)) * TB;
  let stream = stream_index(wid, lid);
  let hw = p.h * p.w;
  let dyPlane = p.ho * p.wo;
  var dyOff: array<u32, CO>;
  for (var k = 0u; k < CO; k++) { dyOff[k] = min(o0 + k, p.c_out - 1u) * dyPlane; }
  var ky: array<i32, TB>;
  var kx: array<i32, TB>;
  var tapOk: array<bool, TB>;
  for (var q = 0u; q < TB; q++) {
    let tap = min(q0 + q, taps - 1u);
    ky[q] = i32(tap / p.kw) - i32(p.pad);
    kx[q] = i32(tap % p.kw) - i32(p.pad);
    tapOk[q] = q0 + q < taps;
  }
  var acc: array<f32, CO * TB>;
  for (var step = 0u; step < p.per_group; step++) {
    let t = task_index(wid, lid, step);
    if (t >= p.tasks) { break; }
    let j = t % p.wo;
    let blk = t / p.wo;
    let n = blk / p.blocks_per_image;
    let i0 = (blk % p.blocks_per_image) * p.row_block;
    let i1 = min(i0 + p.row_block, p.ho);
    let xc = p.x_base + (n * p.c_in + c) * hw;
    let dyn = p.dy_base + n * p.c_out * dyPlane + j;
    var col: array<u32, TB>;
    var colOk: array<bool, TB>;
    for (var q = 0u; q < TB; q++) {
      let xx = i32(j * p.stride) + kx[q];
      colOk[q] = tapOk[q] && xx >= 0 && xx < i32(p.w);
      col[q] = u32(clamp(xx, 0, i32(p.w) - 1));
    }
    for (var i = i0; i < i1; i++) {
      var v: array<f32, TB>;
      for (var q = 0u; q < TB; q++) {
        let yy = i32(i * p.stride) + ky[q];
        let ok = colOk[q] && yy >= 0 && yy < i32(p.h);
        v[q] = select(0.0, x[xc + u32(clamp(yy, 0, i32(p.h) - 1)) * p.w + col[q]], ok);
      }
      let dyi = dyn + i * p.wo;
      for (var k = 0u; k < CO; k++) {
        let g = dy[dyi + dyOff[k]];
        for (var q = 0u; q < TB; q++) { acc[k * TB + q] = fma(g, v[q], acc[k * TB + q]); }
      }
    }
  }
  for (var k = 0u; k < CO; k++) {
    for (var q = 0u; q < TB; q++) {
      if (o0 + k < p.c_out && tapOk[q]) {
        partial[stream * p.weights + ((o0 + k) * p.c_in + c) * taps + q0 + q] = acc[k * TB + q];
      }
    }
  }
}
