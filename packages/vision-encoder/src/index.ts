export { VideoDecodeError } from './errors.js';
export { ffmpegPath } from './ffmpeg.js';
export { probeVideo, DEFAULT_MAX_PIXELS, type VideoInfo, type ProbeOptions } from './probe.js';
export { sampleFrameIndices, samplingOptionsSchema, type SamplingOptions, type SamplingInput } from './sampling.js';
export { decodeVideo, decodeImage, FRAME_FOLDER_FPS, type DecodedVideo, type DecodeOptions } from './decode.js';
