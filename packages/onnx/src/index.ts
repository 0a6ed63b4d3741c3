export { OnnxGraphError, OrtSessionError } from './errors.js';
export { ONNX_DTYPE, DTYPE_BYTES, dtypeOfArray, dtypeOfNumber, type OnnxDtype, type InitializerData } from './data-types.js';
export {
  GraphBuilder,
  initializerValues,
  DEFAULT_OPSET,
  MS_DOMAIN,
  type Dim,
  type ValueInfo,
  type Initializer,
  type AttributeValue,
  type GraphNode,
} from './graph-builder.js';
export { Ops, type Int64Operand } from './ops.js';
export {
  linear,
  addLinearWeight,
  transposeMatrix,
  layerNorm,
  rmsNorm,
  gelu,
  silu,
  rotaryTables,
  applyRotary,
  rotaryCache,
  rotaryEmbedding,
  skipRmsNorm,
  causalPaddingBias,
  groupedQueryAttention,
  splitHeads,
  MASKED_SCORE,
  type AttentionInput,
} from './layers.js';
export {
  lazyWeight,
  isLazyWeight,
  weightDims,
  weightValues,
  mapWeight,
  mapWeights,
  weightInitializer,
  sourceWeights,
  tensorWeights,
  type LazyWeight,
  type WeightInput,
  type GraphWeights,
  type WeightSourceLike,
} from './weights.js';
export {
  onnx,
  toModelProto,
  encodeModel,
  decodeModel,
  writeModel,
  IR_VERSION,
  DEFAULT_EXTERNAL_DATA_THRESHOLD,
  type ModelProto,
  type WriteModelOptions,
  type WrittenModel,
} from './serialize.js';
export { checkModel } from './check-model.js';
export { convertToFloat16, toFloat16, MASKED_SCORE_F16 } from './float16.js';
export {
  quantizeBlocks,
  dequantizeBlocks,
  quantizeColumnsInt8,
  dequantizeColumns,
  DYNAMIC_INT8_MAX_CODE,
  type QuantBits,
  type BlockQuantOptions,
  type BlockQuantized,
  type ColumnQuantized,
} from './quantize.js';
export {
  quantizeMatMuls,
  dynamicQuantizeMatMuls,
  quantizeGraph,
  QUANT_PRESETS,
  QUANTIZE_PRESET_NAMES,
  type QuantizePreset,
  type MatMulSelection,
  type QuantizePassOptions,
  type QuantizePassResult,
} from './quantize-pass.js';
export { createSession, runSession, setSessionThread, OrtSessionCache, WorkerSession, ort, type OrtSession, type SessionOptions, type SessionThread, type ExecutionProvider } from './session.js';
export { exportKey, exportCached } from './export-cache.js';
export { hfActivation, multiHeadAttention } from './transformer-blocks.js';
export { qformerGraph, type QFormerGraphInput, type QFormerGraphOptions, type WeightLookup } from './qformer-graph.js';
