/**
 * CPU cost of per-image colour normalisation (src/nn/colour_normalise.ts) at 224² and 2560²:
 * milliseconds of process CPU time per image (user + system, so other processes' load does not
 * inflate it) and of wall time.
 *
 *   npx tsx bench/colour_normalise.ts
 */
import { matchChannelStats, type ChannelStats } from '../src/nn/colour_normalise.ts';

const target: ChannelStats = { mean: [171, 137, 217], std: [33, 44, 21] };
for (const side of [224, 2560]) {
  const image = new Uint8Array(side * side * 3);
  for (let i = 0; i < image.length; i++) image[i] = (Math.imul(i, 2654435761) >>> 24) & 255;
  for (let k = 0; k < 3; k++) matchChannelStats(image, target); // warm-up (JIT)
  const n = side <= 256 ? 50 : 5;
  const wall0 = performance.now();
  const cpu0 = process.cpuUsage();
  for (let k = 0; k < n; k++) matchChannelStats(image, target);
  const cpu = process.cpuUsage(cpu0);
  console.log(`${side}²: ${((cpu.user + cpu.system) / 1000 / n).toFixed(2)} ms CPU, ${((performance.now() - wall0) / n).toFixed(2)} ms wall per image`);
}
