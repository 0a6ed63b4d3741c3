import { StageRegistry } from '@bvllm/core';
import { noneSampleConfig, poolSampleConfig, qformerSampleConfig } from './config.js';
import { NoneSample, PoolSample } from './pool-sample.js';
import { QFormerSample } from './qformer-sample.js';
import type { SpatialSampleStage } from './types.js';

/** The `spatial-sample` slot: `qformer` (official), `pool` and `none` (ablation baselines). Needs `dims.Cv`. */
export const spatialSampleRegistry = new StageRegistry<SpatialSampleStage>('spatial-sample')
  .register('qformer', {
    schema: qformerSampleConfig,
    create: (config, deps) => new QFormerSample(config, deps),
    description: 'text-conditioned spatial Q-Former, R tokens per frame, optional ToMe budget merge (B-VLLM, spec §1.1 (c), (d))',
  })
  .register('pool', {
    schema: poolSampleConfig,
    create: (config, deps) => new PoolSample(config, deps),
    description: 'adaptive average pooling of the patch grid to R cells, width Cv (baseline)',
  })
  .register('none', {
    schema: noneSampleConfig,
    create: (config, deps) => new NoneSample(config, deps),
    description: 'every patch of every kept frame, width Cv (no sampling)',
  });
