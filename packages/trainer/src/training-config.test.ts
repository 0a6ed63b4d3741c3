import { describe, expect, it } from 'vitest';
import { ConfigError } from '@bvllm/core';
import { STAGE2_LORA_DEFAULTS, parseTrainingConfig, parseTrainingConfigYaml } from './training-config.js';

function errorOf(f: () => unknown): ConfigError {
  try {
    f();
  } catch (e) {
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

const data = 'data:\n  annotations: train.json\n  folder: media\n';

describe('training configs (spec §2)', () => {
  it('stage 1 defaults: lr 1e-3, linear (spec §10 D7), warmup 0.03, wd 0, 2 × 128 = 256, 16 frames, seed 42', () => {
    const c = parseTrainingConfigYaml(`stage: stage1\n${data}`);
    expect(c).toMatchObject({
      stage: 'stage1',
      lr: 1e-3,
      schedule: 'linear',
      warmupRatio: 0.03,
      weightDecay: 0,
      epochs: 1,
      seed: 42,
      numFrames: 16,
      imageAspectRatio: 'square',
      maxGradNorm: 1,
      modelMaxLength: 8192,
    });
    if (c.stage !== 'stage1') throw new Error('unreachable');
    expect(c.microBatchSize * c.gradientAccumulationSteps).toBe(256);
  });

  it('stage 2 defaults: lr 1e-4 cosine, LoRA r 128 α 256 dropout 0.05 on all seven projections, 1 × 128 = 128', () => {
    const c = parseTrainingConfigYaml(`stage: stage2\n${data}`);
    if (c.stage !== 'stage2') throw new Error('unreachable');
    expect(c.lr).toBe(1e-4);
    expect(c.schedule).toBe('cosine');
    // No lora block: the model's own adapter, or these defaults when it has none.
    expect(c.lora).toBeUndefined();
    expect(STAGE2_LORA_DEFAULTS).toEqual({
      rank: 128,
      alpha: 256,
      dropout: 0.05,
      targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
    });
    expect(c.microBatchSize * c.gradientAccumulationSteps).toBe(128);
    expect(c.numFrames).toBe(32);
    expect(c.imageAspectRatio).toBe('pad');
    expect(c.handoff).toBe('carry-all');
  });

  it('overrides from YAML are kept', () => {
    const c = parseTrainingConfigYaml(`stage: stage1\nschedule: cosine\nlr: 0.01\nmaxSteps: 7\n${data}`);
    expect(c.schedule).toBe('cosine');
    expect(c.lr).toBe(0.01);
    expect(c.maxSteps).toBe(7);
  });

  it('names the path of a bad nested field', () => {
    const e = errorOf(() => parseTrainingConfigYaml(`stage: stage2\nlora:\n  rank: -1\n${data}`));
    expect(e).toBeInstanceOf(ConfigError);
    expect(e.path).toEqual(['lora', 'rank']);
    expect(e.message).toContain('lora.rank');
    const partial = parseTrainingConfigYaml(`stage: stage2\nlora: { rank: 4 }\n${data}`);
    expect(partial.stage === 'stage2' && partial.lora).toEqual({ ...STAGE2_LORA_DEFAULTS, rank: 4 });
  });

  it('rejects unknown keys (a typo must fail), a stage-2 field in stage 1, a missing stage and bad YAML', () => {
    expect(() => parseTrainingConfigYaml(`stage: stage1\nlearningRate: 0.1\n${data}`)).toThrow(/learningRate/);
    expect(() => parseTrainingConfigYaml(`stage: stage1\nlora: {}\n${data}`)).toThrow(ConfigError);
    expect(() => parseTrainingConfig({ data: { annotations: 'a', folder: 'b' } })).toThrow(/stage/);
    expect(() => parseTrainingConfigYaml('stage: [stage1\n')).toThrow(/not valid YAML/);
    expect(errorOf(() => parseTrainingConfigYaml('stage: stage1\n')).path).toEqual(['data']);
  });
});
