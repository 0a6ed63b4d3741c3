// Where frame selection looks: on a benchmark split's brief-event questions, how often a selected frame shows the
// brief event (`eventSec`), and on all questions how often every query picked the same frame (a collapsed selector).
// Usage: node bench/selection-hits.mjs <modelDir> <synthDir> [split=test] [seed=0]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng, initBackend } from '@bvllm/core';
import { disposeFeatures, disposeVisualPath, loadModel, videoFeatures } from '@bvllm/pipeline';

const [modelDir, dataDir, split = 'test', seed = '0'] = process.argv.slice(2);
if (!modelDir || !dataDir) throw new Error('usage: node bench/selection-hits.mjs <modelDir> <synthDir> [split] [seed]');
await initBackend();
const model = loadModel(modelDir);
// One question per video: the open form (its MCQA twin asks the same question).
const items = JSON.parse(readFileSync(join(dataDir, `${split}.json`), 'utf8')).filter((e) => e.form === 'open');
let collapsed = 0;
let hits = 0;
let brief = 0;
for (const item of items) {
  const features = await videoFeatures(model, join(dataDir, item.video));
  const question = model.tokenizeQuestion(item.question);
  const path = model.visualPath(features, question, { training: false, rng: Rng.fromSeed(Number(seed)) });
  const chosen = [...path.selection.frameIndices];
  if (new Set(chosen).size === 1) collapsed++;
  if (item.eventSec) {
    brief++;
    const [start, end] = item.eventSec;
    if (chosen.some((i) => features.timestampsSec[i] >= start && features.timestampsSec[i] < end)) hits++;
  }
  disposeVisualPath(path);
  disposeFeatures(features);
}
console.log(`${model.frameSelect.kind}: a selected frame shows the brief event in ${hits} of ${brief} brief-event questions`);
console.log(`every query picked the same frame in ${collapsed} of ${items.length} questions`);
model.dispose();
