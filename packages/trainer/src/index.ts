export { AdamW, type AdamWOptions, type AdamWState } from './adamw.js';
export { LrSchedule, lrMultiplier, warmupStepsFor, type ScheduleKind } from './lr-schedule.js';
export { GradientAccumulator, clipGradNorm } from './gradients.js';
export type { TrainableModel, TrainDataset } from './trainable-model.js';
export { train, totalStepsFor, DataOrder, type LoopConfig, type TrainOptions, type TrainResult } from './train-loop.js';
export {
  saveCheckpoint,
  loadCheckpoint,
  latestCheckpoint,
  latestValidCheckpoint,
  checkpointsNewestFirst,
  cleanStaleCheckpoints,
  loadTrainedWeights,
  checkpointName,
  CHECKPOINT_FORMAT,
  CHECKPOINT_VERSION,
  type Checkpoint,
  type LatestValid,
  type TrainerState,
} from './checkpoint.js';
export { parseTrainerState } from './trainer-state.js';
export { ProgressReporter, formatProgress, type ProgressFigures, type ProgressSink } from './progress.js';
export { renderLossCurve, writeLossCurve, plotPoint, CURVE_RGB, type PlotLayout } from './loss-plot.js';
export {
  stage1Config,
  stage2Config,
  stage2Lora,
  STAGE2_LORA_DEFAULTS,
  trainingConfig,
  parseTrainingConfig,
  parseTrainingConfigYaml,
  loadTrainingConfig,
  type Stage1Config,
  type Stage2Config,
  type Stage2Lora,
  type TrainingConfig,
  type TrainingStage,
} from './training-config.js';
export { DatasetError } from './dataset-error.js';
export {
  IGNORE_INDEX,
  IMAGE_TOKEN_INDEX,
  VIDEO_TOKEN_INDEX,
  MODAL_TOKEN_OF,
  tokenizeWithPlaceholder,
  moveModalTokenToFront,
  preprocessChat,
  preprocessPlain,
  type Modality,
  type ModalToken,
  type TextTokenizer,
  type ChatMessage,
  type ChatRenderer,
  type Turn,
  type TokenizedSample,
} from './preprocess.js';
export { CaptionInContextDataset, ConcatDataset } from './reading-warmup.js';
export { InstructDataset, annotationEntry, type AnnotationEntry, type InstructSample, type InstructDatasetOptions } from './instruct-dataset.js';
export { collateInstruct, type InstructBatch } from './collate.js';
export { mcqaPrompt, extractMcqaAnswer, optionLetter, MCQA_BENCHMARKS, type McqaBenchmark, type McqaQuestion, type McqaExtraction, type ExtractionVia } from './mcqa.js';
export {
  scoreMcqa,
  scoreOpenQa,
  normalizeAnswer,
  exactMatchJudge,
  reportMarkdown,
  writeEvalReport,
  type Score,
  type EvalReport,
  type McqaItem,
  type McqaPrediction,
  type OpenQaItem,
  type JudgeVerdict,
  type AnswerJudge,
} from './eval-report.js';
export { runMcqa, type McqaBenchmarkItem, type McqaAnswerFn, type McqaRunResult } from './mcqa-runner.js';
