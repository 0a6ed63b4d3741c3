import { Rng, initBackend } from '@bvllm/core';
import { beforeAll, describe, expect, it } from 'vitest';
import type { SpatialSampleConfig } from './config.js';
import { spatialSampleOutDim, spatialSampleParameterShapes } from './parameter-shapes.js';
import { spatialSampleRegistry } from './registry.js';

beforeAll(async () => {
  await initBackend();
});

const qformer = { hiddenSize: 16, numLayers: 3, numHeads: 2, intermediateSize: 24, vocabSize: 50, maxPositions: 20, crossAttentionFrequency: 2 };

describe('spatialSampleParameterShapes (issue #18: shape-only lists for convert)', () => {
  it.each([{ kind: 'qformer', numQueries: 5, tokenBudget: null, qformer }, { kind: 'pool', outputGrid: [2, 2] }, { kind: 'none' }])(
    'equals the keys and shapes of the tfjs stage, and its outDim ($kind)',
    (input) => {
      const stage = spatialSampleRegistry.create(input, { rng: Rng.fromSeed(0), dims: { Cv: 12 } });
      const config = spatialSampleRegistry.parse(input) as SpatialSampleConfig;
      expect(spatialSampleParameterShapes(config, 12)).toEqual(new Map([...stage.variables()].map(([k, v]) => [k, v.shape])));
      expect(spatialSampleOutDim(config, 12)).toBe(stage.outDim);
      stage.dispose();
    },
  );
});
