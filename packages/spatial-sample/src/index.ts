export { qformerSampleConfig, poolSampleConfig, noneSampleConfig } from './config.js';
export type { QFormerSampleConfig, PoolSampleConfig, NoneSampleConfig, SpatialSampleConfig } from './config.js';
export type { SpatialSampleInput, SpatialSampleStage } from './types.js';
export { QFormerSample } from './qformer-sample.js';
export { PoolSample, NoneSample, adaptivePoolMatrix } from './pool-sample.js';
export { budgetTokensPerFrame } from './budget.js';
export { spatialSampleRegistry } from './registry.js';
export { bvllmSpatialKeys, instructBlipSpatialKeys } from './spatial-keys.js';
