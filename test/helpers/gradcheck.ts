/**
 * Central finite differences, used to prove each CPU reference backward: for a scalar loss
 * L(x) = Σ f(x)·g with a fixed random g, dL/dx ≈ (L(x + h·e_i) − L(x − h·e_i)) / 2h.
 * Run in float64 (Float64Array inputs to the reference), so h = 1e-6 is accurate.
 */
export function numericGradient(loss: (x: Float64Array) => number, x: Float64Array, h = 1e-6): Float64Array {
  const grad = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const saved = x[i] as number;
    x[i] = saved + h;
    const up = loss(x);
    x[i] = saved - h;
    const down = loss(x);
    x[i] = saved;
    grad[i] = (up - down) / (2 * h);
  }
  return grad;
}

/** Σ a[i]·b[i] in float64: the scalar loss ⟨f(x), g⟩ whose gradient w.r.t. f(x) is g. */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] as number) * (b[i] as number);
  return s;
}
