export { qformerGumbelConfig, uniformSelectConfig, allSelectConfig } from './config.js';
export type { QFormerGumbelConfig, UniformSelectConfig, AllSelectConfig, FrameSelectConfig } from './config.js';
export type { FrameSelectInput, FrameSelectStage } from './types.js';
export { QFormerGumbelSelect, createQFormerGumbelSelect } from './qformer-gumbel-select.js';
export { UniformSelect, AllSelect, uniformFrameIndices } from './fixed-select.js';
export { frameWeightsFromScores, type FrameWeightOptions } from './gumbel-softmax.js';
export { frameSelectRegistry } from './registry.js';
export { bvllmTemporalKeys, instructBlipTemporalKeys } from './temporal-keys.js';
export {
  buildFrameSelectGraph,
  buildFrameMixGraph,
  exportFrameSelectOnnx,
  FRAME_SELECT_ONNX_NAMES,
  FRAME_SELECT_ONNX_FILE,
  FRAME_MIX_ONNX_FILE,
  FRAME_SELECT_EXPORTER_VERSION,
  type FrameSelectSpec,
  type FrameSelectExportOptions,
} from './onnx/frame-select-onnx.js';
export { OrtFrameSelect, type OrtStageOptions, type QuestionIds } from './onnx/ort-frame-select.js';
export { frameSelectParameterShapes } from './parameter-shapes.js';
