// BatchNorm2d training forward, stage 1: per tile of one plane, the (mean, M2 = Σ(x − mean)², count)
// of its elements. Lanes sum x − shift with shift ≈ the tile's first values ("shifted data"
// variance, Chan, Golub & LeVeque 1983), so a large common mean does not cancel digits; lane 0
// then adds the lanes' sums in a fixed order (one barrier: barriers are costly on lavapipe).
// Stage 2 (batchnorm2d_stats_finalize) merges the partials.

@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read_write> partial: array<vec4<f32>>;  // (mean, M2, count, 0)

var<workgroup> lane_s: array<f32, WG>;
var<workgroup> lane_q: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = tile_of(wid, nwg);
  if (!t.valid) { return; }
  let shift = total(x[t.row]) / f32(WIDTH);
  var s = T(0.0);
  var q = T(0.0);
  for (var k = lid; k < t.count; k += WG) {
    let d = x[t.row + k] - shift;
    s += d;
    q = fma(d, d, q);
  }
  lane_s[lid] = total(s);
  lane_q[lid] = total(q);
  workgroupBarrier();
  if (lid == 0u) {
    var ss = 0.0;
    var qq = 0.0;
    for (var k = 0u; k < WG; k++) {
      ss += lane_s[k];
      qq += lane_q[k];
    }
    let count = f32(t.count * WIDTH);
    let m2 = max(qq - ss * ss / count, 0.0);
    partial[partial_index(t)] = vec4<f32>(shift + ss / count, m2, count, 0.0);
  }
}
