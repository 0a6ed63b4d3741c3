import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BvllmError, ConfigError, initBackend } from '@bvllm/core';
import { parseTrainingConfig } from '@bvllm/trainer';
import { beforeAll, describe, expect, it } from 'vitest';
import { BvllmModel } from './bvllm-model.js';
import { testAssets, testConfig } from './test-model.js';
import { trainBvllm } from './train-bvllm.js';

beforeAll(async () => {
  await initBackend();
});

/** A stage-2 config over annotations that do not exist: a run that gets past the LoRA check fails on the data. */
const stage2 = (lora?: Record<string, unknown>) =>
  parseTrainingConfig({ stage: 'stage2', data: { annotations: join(tmpdir(), 'bvllm-absent', 'train.json'), folder: tmpdir() }, ...(lora && { lora }) });

async function failure(model: BvllmModel, lora?: Record<string, unknown>): Promise<BvllmError> {
  try {
    await trainBvllm(model, stage2(lora), { outDir: mkdtempSync(join(tmpdir(), 'bvllm-s2-')) });
  } catch (error) {
    if (BvllmError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected the run to fail');
}

describe('trainBvllm stage 2 on a model that already has LoRA (issue #20)', () => {
  it('refuses a lora block that differs from the model adapter, naming every field, before touching the data', async () => {
    const model = BvllmModel.create(testConfig({ lora: { r: 2, alpha: 4, dropout: 0 } }), testAssets(), 1);
    const error = await failure(model, { rank: 4, alpha: 8 });
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).path).toEqual(['lora', 'rank']);
    expect(error.message).toBe(
      "stage-2 config: lora.rank: 4 in the config, r = 2 in the model; lora.alpha: 8 in the config, 4 in the model; lora.dropout: 0.05 in the config, 0 in the model; omit the lora block to train the model's own adapter",
    );
    expect((await failure(model, { rank: 2, alpha: 4, dropout: 0, targets: ['q_proj'] })).message).toContain('lora.targets: q_proj in the config, q_proj, k_proj');
    model.dispose();
  });

  it('trains the model adapter when the block matches it or is omitted (the run gets as far as the data)', async () => {
    const model = BvllmModel.create(testConfig({ lora: { r: 2, alpha: 4, dropout: 0 } }), testAssets(), 1);
    expect((await failure(model, { rank: 2, alpha: 4, dropout: 0 })).code).toBe('DATASET');
    expect((await failure(model)).code).toBe('DATASET');
    expect(model.lora?.config.r).toBe(2);
    model.dispose();
  });

  it('attaches the block, or the spec defaults, to a model without LoRA', async () => {
    const bare = BvllmModel.create(testConfig(), testAssets(), 1);
    await failure(bare, { rank: 4, alpha: 8 });
    expect(bare.lora?.config).toMatchObject({ r: 4, alpha: 8, dropout: 0.05 });
    bare.dispose();
    const defaults = BvllmModel.create(testConfig(), testAssets(), 1);
    await failure(defaults);
    expect(defaults.lora?.config).toMatchObject({ r: 128, alpha: 256, dropout: 0.05 });
    defaults.dispose();
  });
});
