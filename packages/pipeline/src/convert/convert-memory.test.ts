import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, writeSafetensorsStreamed } from '@bvllm/core';
import { parseQwen2Config, qwen2HfConfig, qwen2ParameterShapes } from '@bvllm/llm-bridge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAssetsDir, testConfig } from '../test-model.js';
import { convertModel } from './convert-model.js';
import { planConversion } from './plan.js';

// issue #18: a conversion holds a few tensors at a time, so its peak memory does not grow with the checkpoint.
// Width 768 and MLP 3072 make one Qwen2 layer 34 MB of float32.
const llm = (numLayers: number) => parseQwen2Config({ vocabSize: 4096, hiddenSize: 768, intermediateSize: 3072, numLayers, numHeads: 12, numKvHeads: 2, tieWordEmbeddings: false });

let dir: string;
let assets: string;

/** A Qwen2 folder of constant weights (only shapes matter), written one tensor at a time. */
function writeQwen2(target: string, numLayers: number): number {
  const c = llm(numLayers);
  const shapes = qwen2ParameterShapes(c);
  writeFileSync(join(target, 'config.json'), JSON.stringify(qwen2HfConfig(c)));
  const entries = [...shapes].map(([key, shape]) => ({ key, shape, dtype: 'F32' as const, read: () => new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.01) }));
  writeSafetensorsStreamed(join(target, 'model.safetensors'), entries);
  return [...shapes].filter(([k]) => k.startsWith('model.layers.0.')).reduce((n, [, s]) => n + 4 * s.reduce((a, b) => a * b, 1), 0);
}

beforeAll(async () => {
  await initBackend();
  dir = mkdtempSync(join(tmpdir(), 'convert-mem-'));
  assets = join(dir, 'assets');
  buildAssetsDir(assets);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('convertModel memory', () => {
  // maxRSS is this process's high-water mark (the forks pool runs each test file in its own process), so the small
  // conversion runs first: if the large one held its layers, their extra 270 MB would show.
  it('peak RSS stays flat from 2 to 10 Qwen2 layers', async () => {
    const peaks: number[] = [];
    let layerBytes = 0;
    for (const layers of [2, 10]) {
      const qwen2 = mkdtempSync(join(dir, `qwen2-${layers}-`));
      layerBytes = writeQwen2(qwen2, layers);
      // Everything but the LLM starts random here: the visual modules are the test config's tiny ones.
      const plan = planConversion(testConfig(), {
        qwen2,
        tokenizer: assets,
        questionTokenizer: join(assets, 'question_tokenizer'),
        allowRandom: ['vision_tower', 'vlm_att_query_temporal', 'vlm_att_encoder_temporal', 'vlm_att_ln_temporal', 'vlm_att_query_spatial', 'vlm_att_encoder_spatial'],
      });
      const out = join(dir, `out-${layers}`);
      await convertModel(plan, out, { dtype: 'f32' });
      plan.close();
      expect(statSync(join(out, 'model.safetensors')).size).toBeGreaterThanOrEqual(layers * layerBytes);
      peaks.push(process.resourceUsage().maxRSS * 1024);
      rmSync(out, { recursive: true });
      rmSync(qwen2, { recursive: true });
    }
    const growth = peaks[1] - peaks[0];
    const held = 8 * layerBytes;
    const line = `peak RSS ${peaks.map((p) => `${(p / 2 ** 20).toFixed(0)} MiB`).join(' → ')} for 2 → 10 layers (eight layers hold ${(held / 2 ** 20).toFixed(0)} MiB)`;
    console.log(`[convert memory] ${line}`);
    // Generous: holding the eight extra layers would add all of their weights; what may grow is uncollected garbage.
    expect(growth, line).toBeLessThan(held / 2);
  }, 180_000);
});
