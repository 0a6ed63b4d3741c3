import { Rng, initBackend } from '@bvllm/core';
import { beforeAll, describe, expect, it } from 'vitest';
import type { FrameSelectConfig } from './config.js';
import { frameSelectParameterShapes } from './parameter-shapes.js';
import { frameSelectRegistry } from './registry.js';

beforeAll(async () => {
  await initBackend();
});

const qformer = { hiddenSize: 16, numLayers: 3, numHeads: 2, intermediateSize: 24, vocabSize: 50, maxPositions: 20, crossAttentionFrequency: 2 };

describe('frameSelectParameterShapes (issue #18: shape-only lists for convert)', () => {
  it.each([
    { kind: 'qformer-gumbel', numQueries: 2, numQueryTokens: 4, qformer },
    { kind: 'qformer-gumbel', numQueries: 2, numQueryTokens: 3, qformer: { ...qformer, crossAttentionFrequency: 1 } },
    { kind: 'uniform', numFrames: 4 },
    { kind: 'all' },
  ])('equals the keys and shapes of the tfjs stage ($kind)', (input) => {
    const stage = frameSelectRegistry.create(input, { rng: Rng.fromSeed(0), dims: { Cv: 12 } });
    const real = new Map([...stage.variables()].map(([k, v]) => [k, v.shape]));
    expect(frameSelectParameterShapes(frameSelectRegistry.parse(input) as FrameSelectConfig, 12)).toEqual(real);
    stage.dispose();
  });
});
