#!/usr/bin/env node
/**
 * Example (a): load a run trained by `lungpath train`, classify every image in a folder, print JSON
 * (one object per image: file, class, probabilities, per-patch probabilities).
 *
 *   node examples/classify-folder.mjs RUN_FOLDER IMAGE_FOLDER
 */
import { openRun } from 'lungpath';

const [runDir, imageDir] = process.argv.slice(2);
if (!runDir || !imageDir) {
  console.error('usage: node examples/classify-folder.mjs RUN_FOLDER IMAGE_FOLDER');
  process.exit(2);
}
const model = await openRun(runDir);
try {
  for (const prediction of await model.classifyFolder(imageDir)) console.log(JSON.stringify(prediction));
} finally {
  model.close();
}
