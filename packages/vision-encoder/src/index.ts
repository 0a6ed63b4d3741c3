export { VideoDecodeError, UnsupportedMediaError, ResolutionLimitError } from './errors.js';
export { readImageSize, probeImage, type ImageSize } from './image-size.js';
export { detectMediaFormat, ffmpegInput, type MediaFormat } from './media-format.js';
export { ffmpegPath } from './ffmpeg.js';
export { probeVideo, parseRate, DEFAULT_MAX_PIXELS, type VideoInfo, type ProbeOptions } from './probe.js';
export { sampleFrameIndices, samplingOptionsSchema, type SamplingOptions, type SamplingInput } from './sampling.js';
export { decodeVideo, decodeImage, fitWithin, FRAME_FOLDER_FPS, type DecodedVideo, type DecodeOptions } from './decode.js';
export {
  preprocessClip,
  resizeAndCrop,
  resizeBicubic,
  expandToSquare,
  preprocessOptionsSchema,
  CLIP_MEAN,
  CLIP_STD,
  type PreprocessOptions,
  type PreprocessInput,
} from './preprocess.js';
export { interpolatePositions, bicubicMatrix } from './pos-interp.js';
export { VisionTransformer, vitConfigSchema, type VitConfig, type VitConfigInput, type VitOutput } from './vit.js';
export { vitConfigFromHf, familyOf, type VitLayout } from './hf-vit-config.js';
export { loadVisionTransformer, keyTables, type LoadVitOptions } from './load-vit.js';
export { instructBlipVisionKeys } from './instructblip-keys.js';
export { lavisVisionKeys, fuseLavisQkvBias } from './lavis-keys.js';
export { clipVisionKeys } from './clip-keys.js';
export { siglipVisionKeys } from './siglip-keys.js';
export { VisionEncoder, type EncodeOptions, type EncodeVideoOptions, type EncoderIdentity, type FeatureOutput, type ClsSplit } from './vision-encoder.js';
export { FeatureCache, contentHash, type CacheEntryMeta } from './feature-cache.js';
export { extractFeatures, listVideos } from './extract-features.js';
export { splitTokens, encodeFrameBatches, type FrameEncoder } from './vision-encoder.js';
export { buildVisionGraph, vitWeights, vitWeightsFrom, exportVisionEncoderOnnx, VISION_ONNX_NAMES, VISION_EXPORTER_VERSION, type VisionQuantize, type VisionExportOptions, type VitWeightSource } from './onnx/vision-onnx.js';
export { OrtVisionEncoder, VISION_ONNX_FILE, type OrtVisionOptions, type OrtVisionSpec, type EncodedBatch, type EncodeBatchesOptions } from './onnx/ort-vision-encoder.js';
export { vitParameterShapes } from './parameter-shapes.js';
export { LiveSource, openLiveSource, LIVE_MAX_PIXELS, type LiveFrame, type LiveSourceOptions, type LiveSourceStatus, type LiveSourceState, type LiveSourceEvent, type StreamGap } from './live-source.js';
export { StreamOpenError, StreamNoVideoError, StreamStalledError, StreamClosedError } from './live-errors.js';
