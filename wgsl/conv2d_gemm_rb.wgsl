// conv2d as a register-blocked implicit GEMM, for discrete GPUs (after llama.cpp's Vulkan conv2d_mm:
// a large output tile per workgroup, a K step of 16 staged through workgroup memory, a block of
// accumulators per invocation, index arithmetic hoisted out of the K loop). One skeleton,
//   C[row][col] = Σ_r A[row][r] · B[r][col],
// three uses ({{MODE}}), none with an im2col buffer:
//   0 forward: row = output pixel m = (n, i, j), col = output channel o, r = k = (c, ky, kx);
//              A = x[n, c, i·s+ky−p, j·s+kx−p] (0 outside), B = w[o][k]; y = C + bias.
//   1 dx:      row = input pixel m = (n, iy, ix), col = input channel c, r = k = (o, ky, kx);
//              A = dy[n, o, (iy+p−ky)/s, (ix+p−kx)/s] where that divides and is inside, else 0;
//              B = w[o][c][ky][kx]; dx = C.
//   2 dW:      row = output channel o, col = k = (c, ky, kx), r = output pixel m in this
//              workgroup's slice of N·Ho·Wo (split-K: wid.z); A = dy[n, o, pixel], B = the forward's
//              A; the partial sums go to part[split][o][k], summed in a fixed order by
//              conv2d_dw_reduce (no atomics).
// Tile {{TM}} rows × {{TN}} cols, 256 invocations as 16 × 16, each {{RM}} × {{RN}} accumulators
// at rows tx + 16·a, cols ty + 16·b (consecutive invocations touch consecutive words: no bank
// conflicts, coalesced stores). Workgroup memory: (TM + TN) · 16 floats (16 KiB at 128 × 128).

struct Params {
  cIn: u32, h: u32, w: u32, cOut: u32,
  ho: u32, wo: u32, kh: u32, kw: u32,
  stride: u32, pad: u32, srcBase: u32, dstBase: u32,
  rows: u32, cols: u32, red: u32, hasBias: u32,
  // dW only: pixels per split (a multiple of 16).
  perSplit: u32, _p0: u32, _p1: u32, _p2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// forward: x; dx: dy; dW: x (B) — see `src2` for dW's dy.
@group(0) @binding(1) var<storage, read> src: array<f32>;
// forward / dx: the weights; dW: dy.
@group(0) @binding(2) var<storage, read> src2: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;

const MODE = {{MODE}}u;
const TM = {{TM}}u;
const TN = {{TN}}u;
const RM = {{RM}}u;
const RN = {{RN}}u;
const TK = 16u;
const A_LOADS = TM * TK / 256u;
const B_LOADS = TN * TK / 256u;

var<workgroup> As: array<f32, {{TM}} * 16>;  // [r][row]
var<workgroup> Bs: array<f32, {{TN}} * 16>;  // [r][col]

// The input gather of the forward conv (A in mode 0, B in mode 2): x at pixel m, reduction index k.
fn gatherX(m: u32, k: u32) -> f32 {
  let plane = p.ho * p.wo;
  let taps = p.kh * p.kw;
  let n = m / plane;
  let q = m % plane;
  let c = k / taps;
  let t = k % taps;
  let iy = i32((q / p.wo) * p.stride + t / p.kw) - i32(p.pad);
  let ix = i32((q % p.wo) * p.stride + t % p.kw) - i32(p.pad);
  if (iy < 0 || iy >= i32(p.h) || ix < 0 || ix >= i32(p.w)) { return 0.0; }
  return src[p.srcBase + ((n * p.cIn + c) * p.h + u32(iy)) * p.w + u32(ix)];
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let tx = lid % 16u;
  let ty = lid / 16u;
  var rowTile: u32;
  var colTile: u32;
  var rStart = 0u;
  var rEnd = p.red;
  if (MODE == 2u) {
    rowTile = wid.x * TM;
    colTile = wid.y * TN;
    rStart = wid.z * p.perSplit;
    rEnd = min(p.red, rStart + p.perSplit);
  } else {
    rowTile = (wid.x + wid.y * nwg.x) * TM;
    colTile = wid.z * TN;
  }
  let taps = p.kh * p.kw;
  let plane = p.ho * p.wo;
  let inPlane = p.h * p.w;

  // Hoisted per-invocation A-row state (modes 0, 1: lanes along rows = pixels, so loads coalesce).
  let rowA = rowTile + lid % TM;
  let rowOk = rowA < p.rows;
  var n0 = 0u;
  var ya = 0i;
  var xa = 0i;
  if (MODE == 0u) {
    n0 = rowA / plane;
    ya = i32((rowA % plane) / p.wo * p.stride) - i32(p.pad);
    xa = i32((rowA % plane) % p.wo * p.stride) - i32(p.pad);
  } else if (MODE == 1u) {
    n0 = rowA / inPlane;
    ya = i32((rowA % inPlane) / p.w) + i32(p.pad);
    xa = i32((rowA % inPlane) % p.w) + i32(p.pad);
  }
  let srcItem = p.srcBase + n0 * p.cOut * plane; // mode 1: dy item base

  var acc: array<f32, {{RM}} * {{RN}}>;
  for (var i = 0u; i < RM * RN; i++) { acc[i] = 0.0; }
  var a: array<f32, {{RM}}>;
  var b: array<f32, {{RN}}>;

  for (var r0 = rStart; r0 < rEnd; r0 += TK) {
    // ---- A tile [TK][TM]
    for (var l = 0u; l < A_LOADS; l++) {
      var v = 0.0;
      if (MODE == 2u) {
        // dW: A[o][m] = dy[n, o, pixel]; lanes along m.
        let idx = lid + 256u * l;
        let rl = idx % TK;
        let row = idx / TK;
        let o = rowTile + row;
        let m = r0 + rl;
        if (o < p.rows && m < rEnd) {
          v = src2[p.dstBase + ((m / plane) * p.cOut + o) * plane + m % plane];
        }
        As[rl * TM + row] = v;
      } else {
        let rl = lid / TM + (256u / TM) * l;
        let k = r0 + rl;
        if (rowOk && k < p.red) {
          if (MODE == 0u) {
            let c = k / taps;
            let t = k % taps;
            let iy = ya + i32(t / p.kw);
            let ix = xa + i32(t % p.kw);
            if (iy >= 0 && iy < i32(p.h) && ix >= 0 && ix < i32(p.w)) {
              v = src[p.srcBase + ((n0 * p.cIn + c) * p.h + u32(iy)) * p.w + u32(ix)];
            }
          } else {
            // dx: k = (o, ky, kx); the dy pixel that x[iy][ix] fed through tap (ky, kx), if any.
            let o = k / taps;
            let t = k % taps;
            let sy = ya - i32(t / p.kw);
            let sx = xa - i32(t % p.kw);
            if (sy >= 0 && sx >= 0 && u32(sy) % p.stride == 0u && u32(sx) % p.stride == 0u) {
              let oy = u32(sy) / p.stride;
              let ox = u32(sx) / p.stride;
              if (oy < p.ho && ox < p.wo) { v = src[srcItem + o * plane + oy * p.wo + ox]; }
            }
          }
        }
        As[rl * TM + lid % TM] = v;
      }
    }
    // ---- B tile [TK][TN]; lanes along r
    for (var l = 0u; l < B_LOADS; l++) {
      let idx = lid + 256u * l;
      let rl = idx % TK;
      let col = idx / TK;
      let r = r0 + rl;
      let cg = colTile + col;
      var v = 0.0;
      if (cg < p.cols && r < rEnd) {
        if (MODE == 0u) {
          v = src2[cg * p.red + r];
        } else if (MODE == 1u) {
          // w[o][c][t] with r = (o, t), col = c
          v = src2[((r / taps) * p.cIn + cg) * taps + r % taps];
        } else {
          v = gatherX(r, cg);
        }
      }
      Bs[rl * TN + col] = v;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TK; kk++) {
      for (var i = 0u; i < RM; i++) { a[i] = As[kk * TM + tx + 16u * i]; }
      for (var j = 0u; j < RN; j++) { b[j] = Bs[kk * TN + ty + 16u * j]; }
      for (var i = 0u; i < RM; i++) {
        for (var j = 0u; j < RN; j++) { acc[i * RN + j] = fma(a[i], b[j], acc[i * RN + j]); }
      }
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < RM; i++) {
    let row = rowTile + tx + 16u * i;
    if (row >= p.rows) { continue; }
    for (var j = 0u; j < RN; j++) {
      let col = colTile + ty + 16u * j;
      if (col >= p.cols) { continue; }
      let v = acc[i * RN + j];
      if (MODE == 0u) {
        var bv = 0.0;
        if (p.hasBias == 1u) { bv = bias[col]; }
        dst[p.dstBase + ((row / plane) * p.cOut + col) * plane + row % plane] = v + bv;
      } else if (MODE == 1u) {
        dst[p.dstBase + ((row / inPlane) * p.cIn + col) * inPlane + row % inPlane] = v;
      } else {
        dst[(wid.z * p.rows + row) * p.cols + col] = v;
      }
    }
  }
}
