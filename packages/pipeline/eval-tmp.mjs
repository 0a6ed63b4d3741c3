import { initBackend } from '@bvllm/core';
import { loadModel, evaluateSplit } from '@bvllm/pipeline';
await initBackend();
const model = loadModel(process.argv[2]);
const t0 = Date.now();
const r = await evaluateSplit(model, process.argv[3], { limit: +process.argv[4] || 60 });
console.log(JSON.stringify({ mcqa: r.mcqa?.report, open: r.open }, null, 1));
console.log(r.answers.slice(0, 12));
console.log('s', (Date.now() - t0) / 1000);
