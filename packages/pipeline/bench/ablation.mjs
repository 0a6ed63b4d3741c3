// The default model's ablation table (spec §5): text-conditioned selection vs `uniform`, merge on/off, spatial
// `qformer` vs `pool`, each trained from one shared base (vision tower + LLM) with several seeds and evaluated on the
// test split. Prints a Markdown table (accuracy per task, mean and spread over seeds).
// Usage: node bench/ablation.mjs <synthDir> <baseModelDir> <workDir> [seeds=0,1] [stage2Epochs=4] [variants=all]
import { join } from 'node:path';
import { initBackend } from '@bvllm/core';
import { evaluateSplit, tinyAblation, trainTinyModel } from '@bvllm/pipeline';

const [dataDir, base, workDir, seedList = '0,1', epochs = '4', only] = process.argv.slice(2);
if (!dataDir || !base || !workDir) throw new Error('usage: node bench/ablation.mjs <synthDir> <baseModelDir> <workDir> [seeds] [stage2Epochs] [variants]');
await initBackend();
const variants = {
  'B-VLLM (qformer-gumbel, row-cosine, qformer)': {},
  'selection → uniform': { frameSelect: 'uniform' },
  'merge → none': { tokenMerge: 'none' },
  'spatial → pool': { spatialSample: 'pool' },
};
const chosen = Object.entries(variants).filter(([, v], i) => !only || only.split(',').includes(String(i)));
const seeds = seedList.split(',').map(Number);
const rows = [];
for (const [name, kinds] of chosen) {
  const runs = [];
  for (const seed of seeds) {
    const tag = `${Object.values(kinds).join('-') || 'full'}-s${seed}`;
    const model = await trainTinyModel({ dataDir, outDir: join(workDir, tag, 'model'), workDir: join(workDir, tag), seed, base, stage2Epochs: Number(epochs), overrides: tinyAblation(kinds) });
    const result = await evaluateSplit(model, join(dataDir, 'test.json'), { seed });
    model.dispose();
    const acc = (r) => (r ? r.overall.accuracy : NaN);
    runs.push({ mcqa: acc(result.mcqa?.report), open: acc(result.open), brief: result.mcqa?.report.perTask['brief-event']?.accuracy ?? NaN, briefOpen: result.open?.perTask['brief-event']?.accuracy ?? NaN });
    console.error(`${name} seed ${seed}: ${JSON.stringify(runs.at(-1))}`);
  }
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
console.log(`\nmean ± half-range over seeds ${seeds.join(', ')}; stage-2 epochs ${epochs}; base ${base}`);
