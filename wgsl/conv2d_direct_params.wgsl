// The uniform block of the direct conv2d kernels (conv2d_fwd_3x3, conv2d_fwd_2x2s2[_sg],
// conv2d_fwd_1x1, conv2d_dx_2x2s2[_sg]), pasted before each through the kernel's `include`; filled
// by directConv in src/kernels/conv2d_forward.ts. "src" is the tensor read (x, or dy for a data
// gradient), "dst" the one written. One dispatch covers `items` batch items, `rows` × `segs` pixel
// groups each, one block of input channels [ci0, ci0 + ciCount) and one tile of output channels
// from co0 (`groups` vec4 groups); `accumulate` = 1 adds into dst (every block after the first).
struct Params {
  cIn: u32, h: u32, w: u32, cOut: u32,
  ho: u32, wo: u32, xBase: u32, yBase: u32,
  items: u32, rows: u32, segs: u32, ci0: u32,
  ciCount: u32, co0: u32, groups: u32, accumulate: u32,
  hasBias: u32, _p0: u32, _p1: u32, _p2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
