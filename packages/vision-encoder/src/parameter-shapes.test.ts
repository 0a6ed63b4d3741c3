import { Rng, initBackend } from '@bvllm/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { vitParameterShapes } from './parameter-shapes.js';
import { VisionTransformer, vitConfigSchema, type VitConfigInput } from './vit.js';

beforeAll(async () => {
  await initBackend();
});

const small = { hiddenSize: 8, intermediateSize: 12, numLayers: 2, numHeads: 2, imageSize: 16, patchSize: 8 };

describe('vitParameterShapes (issue #18: shape-only lists for convert)', () => {
  it.each<VitConfigInput>([
    { family: 'instructblip', ...small },
    { family: 'instructblip', ...small, qkvBias: false },
    { family: 'clip', ...small },
    { family: 'siglip', ...small },
  ])('equals the keys and shapes of the tfjs tower ($family, qkvBias $qkvBias)', (input) => {
    const config = vitConfigSchema.parse(input);
    const tower = new VisionTransformer(config, Rng.fromSeed(0), { init: 'zeros' });
    const real = new Map([...tower.store.entries()].map(([k, v]) => [`vision_tower.${k}`, v.shape]));
    expect(vitParameterShapes(config, 'vision_tower.')).toEqual(real);
    tower.dispose();
  });
});
