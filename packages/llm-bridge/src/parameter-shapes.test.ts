import { Rng, initBackend } from '@bvllm/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { LoraAdapter, loraConfig } from './lora.js';
import { loraParameterShapes, projectorParameterShapes, qwen2ParameterShapes } from './parameter-shapes.js';
import { projectorConfig, projectorRegistry } from './projector.js';
import { parseQwen2Config } from './qwen2-config.js';
import { Qwen2Model } from './qwen2-model.js';

beforeAll(async () => {
  await initBackend();
});

const shapesOf = (vars: ReadonlyMap<string, { shape: number[] }>) => new Map([...vars].map(([k, v]) => [k, v.shape]));
const small = { vocabSize: 30, hiddenSize: 16, intermediateSize: 24, numLayers: 2, numHeads: 4, numKvHeads: 2 };

describe('parameter shapes of the language side (issue #18: shape-only lists for convert)', () => {
  it.each([
    { ...small, tieWordEmbeddings: true },
    { ...small, tieWordEmbeddings: false, headDim: 6 },
  ])('qwen2ParameterShapes equals the tfjs model (tied $tieWordEmbeddings)', (input) => {
    const model = Qwen2Model.create(input, Rng.fromSeed(0));
    expect(qwen2ParameterShapes(parseQwen2Config(input))).toEqual(shapesOf(model.variables()));
    model.dispose();
  });

  it('loraParameterShapes equals the PEFT keys the adapter creates', () => {
    const model = Qwen2Model.create(small, Rng.fromSeed(0));
    const lora = { r: 3, alpha: 6, targetModules: ['q_proj', 'o_proj', 'down_proj'] as const };
    const adapter = LoraAdapter.attach(model, { ...lora, targetModules: [...lora.targetModules] }, Rng.fromSeed(1));
    expect(loraParameterShapes(parseQwen2Config(small), loraConfig.parse({ ...lora, targetModules: [...lora.targetModules] }))).toEqual(shapesOf(adapter.variables()));
    adapter.detach();
    model.dispose();
  });

  it.each([{ kind: 'linear2' }, { kind: 'linear2', hiddenDim: 7 }, { kind: 'mlp2x_gelu' }])('projectorParameterShapes equals the tfjs projector (%o)', (input) => {
    const dims = { Cq: 10, Cv: 12, D: 16 };
    const projector = projectorRegistry.create(input, { rng: Rng.fromSeed(0), dims });
    expect(projectorParameterShapes(projectorConfig.parse(input), dims)).toEqual(shapesOf(projector.variables()));
    projector.dispose();
  });
});
