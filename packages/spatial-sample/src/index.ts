export { qformerSampleConfig, poolSampleConfig, noneSampleConfig } from './config.js';
export type { QFormerSampleConfig, PoolSampleConfig, NoneSampleConfig, SpatialSampleConfig } from './config.js';
export type { SpatialSampleInput, SpatialSampleStage } from './types.js';
export { QFormerSample } from './qformer-sample.js';
export { PoolSample, NoneSample, adaptivePoolMatrix } from './pool-sample.js';
export { budgetTokensPerFrame, tokensPerFrameUnder } from './budget.js';
export { spatialSampleRegistry } from './registry.js';
export { bvllmSpatialKeys, instructBlipSpatialKeys } from './spatial-keys.js';
export {
  buildSpatialSampleGraph,
  exportSpatialSampleOnnx,
  SPATIAL_ONNX_NAMES,
  SPATIAL_ONNX_FILE,
  SPATIAL_EXPORTER_VERSION,
  type SpatialSampleSpec,
  type SpatialProjectorSpec,
  type SpatialExportOptions,
} from './onnx/spatial-sample-onnx.js';
export { OrtSpatialSample, type OrtSpatialOptions, type OrtSpatialTokens, type QuestionIds } from './onnx/ort-spatial-sample.js';
export { spatialSampleParameterShapes, spatialSampleOutDim } from './parameter-shapes.js';
