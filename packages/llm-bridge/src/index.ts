export { IGNORE_INDEX, IMAGE_TOKEN_INDEX, VIDEO_TOKEN_INDEX, MODAL_TOKENS } from './constants.js';
export { qwen2Config, parseQwen2Config, qwen2ConfigFromHf, headDimOf, type Qwen2Config, type Qwen2ConfigInput } from './qwen2-config.js';
export { qwen2KeyRules } from './qwen2-keys.js';
export {
  Qwen2Model,
  Qwen2Block,
  disposeKvCache,
  QWEN2_PROJECTIONS,
  type KvCache,
  type Qwen2ForwardInput,
  type Qwen2ForwardOutput,
  type Qwen2ProjectionName,
} from './qwen2-model.js';
export { causalLmLoss } from './causal-lm-loss.js';
export {
  Projector,
  projectorRegistry,
  projectorConfig,
  linear2ProjectorConfig,
  mlp2xGeluProjectorConfig,
  PROJECTOR_KEYS,
  type ProjectorConfig,
} from './projector.js';
export { Qwen2Tokenizer, type TokenizerConfigJson } from './tokenizer.js';
export { ChatTemplate, QWEN2_DEFAULT_CHAT_TEMPLATE, multimodalUserContent, type ChatMessage, type PromptSegment } from './chat-template.js';
export { tokenizeMultimodal, tokenizeChat } from './multimodal-tokens.js';
export { chatExample, plainExample, type TrainingExample } from './training-examples.js';
export { spliceVisual, PlaceholderMismatchError, type SpliceInput, type SpliceOutput } from './splice-visual.js';
export { samplingConfig, sampleNextToken, candidateDistribution, applyRepetitionPenalty, argmax, type SamplingConfig } from './sampling.js';
export { TextDeltaDecoder, StopStringMatcher } from './text-deltas.js';
export {
  generate,
  generateTokens,
  generateText,
  streamText,
  checkPromptLength,
  asCausalDecoder,
  readPrompt,
  type DecoderLike,
  generationConfig,
  PromptTooLongError,
  type GenerationConfig,
  type GenerationConfigInput,
  type GenerationPrompt,
  type GenerationRuntime,
  type FinishReason,
} from './generate.js';
export { LoraAdapter, isLoraKey, loraConfig, peftKey, type LoraConfig, type LoraConfigInput } from './lora.js';
export { loadLoraAdapter, saveLoraAdapter, ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE } from './lora-peft.js';
export { inFolderLoraMergedSource, loraMergedSource } from './lora-merge-source.js';
export { positionIdsFromMask, leftPad, type CausalDecoder, type DecoderCache, type DecoderStepResult, type DecoderRuntimeName, type PrefillInput } from './decoder-runtime.js';
export { TfjsDecoder } from './decoder-runtime-tfjs.js';
export { OrtDecoder, ORT_EMBED_FILE, ORT_DECODER_FILE, type OrtDecoderOptions } from './ort/ort-decoder.js';
export { generateBatch, type BatchGenerationRuntime, type BatchGenerationResult } from './generate-batch.js';
export { exportQwen2Onnx, buildQwen2DecoderGraph, buildQwen2EmbedGraph, qwen2HfConfig, qwen2Weights, QWEN2_ONNX_EXPORTER_VERSION, type Qwen2OnnxExportOptions, type Qwen2OnnxExport } from './onnx-export/qwen2-onnx.js';
export { qwen2ParameterShapes, loraParameterShapes, projectorParameterShapes } from './parameter-shapes.js';
export { trainByteBpe, bpeModelJson, byteBpeTokenizerJson, bytesToUnicode, QWEN2_CHAT_SPECIAL_TOKENS, type ByteBpeOptions } from './byte-bpe.js';
