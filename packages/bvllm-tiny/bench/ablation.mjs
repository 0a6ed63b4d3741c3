// The default model's ablation table (spec §5): text-conditioned selection vs `uniform`, merge on/off, spatial
// `qformer` vs `pool`, each trained from one shared base (vision tower + LLM, `<work>/base` of a `train-tiny` run)
// with several seeds and evaluated on the test split. Each run writes `<workDir>/<variant>-s<seed>/result.json` and
// is skipped when that file exists, so several processes can share the runs (one per core) and a last call with
// every seed prints the whole table (Markdown: accuracy mean ± half-range over seeds).
// Runs share one frame-feature cache (`<workDir>/features`): the base's tower encodes each video once.
// Usage: node bench/ablation.mjs <synthDir> <baseModelDir> <workDir> [seeds=0,1,2] [variants=0,1,2,3]
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initBackend } from '@bvllm/core';
import { InferenceSession, evaluateSplit } from '@bvllm/pipeline';
import { tinyAblation, trainTinyModel } from '../dist/index.js';

const [dataDir, base, workDir, seedList = '0,1,2', only] = process.argv.slice(2);
if (!dataDir || !base || !workDir) throw new Error('usage: node bench/ablation.mjs <synthDir> <baseModelDir> <workDir> [seeds] [variants]');
await initBackend();
const variants = [
  ['B-VLLM (qformer-gumbel, row-cosine, qformer)', {}],
  ['selection → uniform', { frameSelect: 'uniform' }],
  ['merge → none', { tokenMerge: 'none' }],
  ['spatial → pool', { spatialSample: 'pool' }],
];
const chosen = variants.filter((_, i) => !only || only.split(',').includes(String(i)));
const seeds = seedList.split(',').map(Number);
const rate = (report, task) => (task ? report?.perTask[task]?.accuracy : report?.overall.accuracy) ?? NaN;

async function run(kinds, seed) {
  const dir = join(workDir, `${Object.values(kinds).join('-') || 'full'}-s${seed}`);
  const file = join(dir, 'result.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8'));
  mkdirSync(dir, { recursive: true });
  const model = await trainTinyModel({ dataDir, outDir: join(dir, 'model'), workDir: dir, seed, base, featureCacheDir: join(workDir, 'features'), overrides: tinyAblation(kinds), log: (line) => console.error(`${dir}: ${line}`) });
  const session = await InferenceSession.fromModel(model);
  const result = await evaluateSplit(session, join(dataDir, 'test.json'), { seed });
  await session.close();
  model.dispose();
  const row = { mcqa: rate(result.mcqa?.report), open: rate(result.open), brief: rate(result.mcqa?.report, 'brief-event'), briefOpen: rate(result.open, 'brief-event') };
  writeFileSync(file, `${JSON.stringify(row)}\n`);
  console.error(`${dir}: ${JSON.stringify(row)}`);
  return row;
}

const rows = [];
for (const [name, kinds] of chosen) {
  const runs = [];
  for (const seed of seeds) runs.push(await run(kinds, seed));
  rows.push({ name, runs });
}
const stat = (xs) => {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const spread = (Math.max(...xs) - Math.min(...xs)) / 2;
  return `${(100 * mean).toFixed(1)} ± ${(100 * spread).toFixed(1)}`;
};
console.log(`| variant | MCQA acc. (%) | open acc. (%) | brief-event MCQA (%) | brief-event open (%) |`);
console.log(`|---|---|---|---|---|`);
for (const { name, runs } of rows)
  console.log(`| ${name} | ${stat(runs.map((r) => r.mcqa))} | ${stat(runs.map((r) => r.open))} | ${stat(runs.map((r) => r.brief))} | ${stat(runs.map((r) => r.briefOpen))} |`);
console.log(`\nmean ± half-range over seeds ${seeds.join(', ')}; base ${base}`);
