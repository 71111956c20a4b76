/** Seeded test data (mulberry32), so every test sees the same inputs on every run: src/kernels/check.ts. */
export { randomArray, rng } from '../../src/kernels/check.ts';
