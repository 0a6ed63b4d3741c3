export { BvllmModel, disposeVisualPath, type BvllmAssets, type BvllmSample, type VisualPath } from './bvllm-model.js';
export {
  pipelineConfigSchema,
  parsePipelineConfig,
  runtimeConfig,
  moduleRuntime,
  quantizeSetting,
  PIPELINE_FORMAT,
  PIPELINE_FORMAT_VERSION,
  type PipelineConfig,
  type PipelineConfigInput,
  type RuntimeConfig,
  type ModuleRuntime,
  type QuantizeSetting,
} from './pipeline-config.js';
export { loadModel, loadAssets, saveModel, readModelConfig, CONFIG_FILE, WEIGHTS_FILE, QUESTION_TOKENIZER_DIR, type LoadModelOptions } from './model-dir.js';
export { checkModelFolder, validateModelConfig, unusedWeightsNotice, type ModelFolderCheck } from './model-folder-check.js';
export {
  InferenceSession,
  type InferenceSessionOptions,
  type StageTimings,
  type EncodeVideoOptions,
  type AnswerPrompt,
  type ChatTurn,
  type AskOptions,
  type AskResult,
  type SelectionSummary,
} from './inference-session.js';
export { EncodedVideo, type SelectionFeature } from './inference/encoded-video.js';
export { createPatchStore, FilePatches, DEFAULT_PATCH_MEMORY_BYTES, type PatchStore, type PatchStoreOptions } from './inference/patch-store.js';
export { readSelection, framesToRead, DEFAULT_SELECTION_EPSILON, type SelectionRead } from './inference/selection-read.js';
export { openFrameStream, type FrameStream, type FrameChunk } from './inference/frame-stream.js';
export { ClipPool, sharedClipPool, PreprocessWorkerError } from './inference/clip-pool.js';
export { maxVisualTokens } from './visual-tokens.js';
export {
  exportModules,
  exportedModules,
  readModulesManifest,
  modulesKey,
  folderFingerprint,
  storeFingerprint,
  ModulesManifestError,
  MODULES_DIR,
  MODULES_MANIFEST,
  LLM_MODULE_DIR,
  type ExportModulesOptions,
  type ModulesManifest,
  type ModuleName,
} from './inference/export-modules.js';
export { providersFromEnv, exportCacheDir, type OrtOptions } from './inference/ort-options.js';
export { setSessionThread, type SessionThread } from '@bvllm/onnx';
export { ortReport, ffmpegReport, type OrtReport, type FfmpegReport } from './runtime-report.js';
export { VideoChat } from './video-chat.js';
export { LiveStream, type LiveStreamOptions, type LiveStreamStatus, type LiveAskOptions, type LiveAskResult } from './live-stream.js';
export { LiveWindow, WindowSnapshotExpiredError, type LiveWindowOptions, type LiveWindowStatus, type WindowFrame } from './inference/live-window.js';
export { videoFeatures, disposeFeatures, type VideoFeatureOptions } from './video-features.js';
export { trainBvllm, precomputeFeatures, collateBvllm, stageDataset, type TrainBvllmOptions } from './train-bvllm.js';
export { evaluateSplit, readEvalSplit, scoreEvalAnswers, type EvaluateOptions, type EvaluateResult, type EvalQuestion, type EvalVideo, type EvalAnswer } from './evaluate.js';
export { modelFromHuggingFace, type HuggingFaceSources } from './from-huggingface.js';
export {
  planConversion,
  convertModel,
  ConversionError,
  modelParameterShapes,
  moduleConfigs,
  VISION_PREFIX,
  type ConversionPlan,
  type ConversionSources,
  type PlannedWeight,
  type RandomReason,
  type SkippedKey,
  type ConvertOptions,
  type ConvertDtype,
  type ConvertQuantize,
  type ConversionReport,
  type SourceName,
  type MissingWeight,
  type UnexpectedWeight,
  type MisshapedWeight,
  type WrongDtypeWeight,
  type ModuleConfigs,
} from './convert/index.js';
