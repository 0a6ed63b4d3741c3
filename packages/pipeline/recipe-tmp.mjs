import { initBackend } from '@bvllm/core';
import { trainTinyModel } from '@bvllm/pipeline';
console.log(await initBackend());
const t0 = Date.now();
const model = await trainTinyModel({ dataDir: '/tmp/synth1', outDir: process.env.OUT || '/tmp/tiny-model', workDir: process.env.WORK || '/tmp/tiny-work', seed: 0,
  visionSteps: +process.env.VS || 50, lmEpochs: +process.env.LE || 1, stage1Epochs: +process.env.S1 || 1, stage2Epochs: +process.env.S2 || 1,
  log: (l) => console.log(`[${((Date.now()-t0)/1000).toFixed(0)}s] ${l}`) });
console.log('done', (Date.now()-t0)/1000);
