/**
 * The recipe of the shipped default model `bvllm-tiny`: a B-VLLM small enough to train on a 2-core CPU in
 * minutes, on the synthetic benchmark of @bvllm/synth. Same architecture and stage kinds as the official model
 * (spec §1), scaled down; the steps and their departures from the paper are in the model card.
 *
 *   0. tokenizers learned once from the benchmark's text (tiny-assets.ts), or taken fixed from `base`;
 *   1. `vision`: the vision tower pre-trained on the training videos' frames mixed with frames rendered from fresh
 *      scenes (no pretrained tower is downloadable; pretrain-batches.ts);
 *   2. `lm`, `lm-labels`: the LLM warmed up as a reader, each sample with its video's caption where `<video>` goes
 *      (no pretrained Qwen2 either; @bvllm/trainer's CaptionInContextDataset), then with label tokens there: per
 *      frame and cell, the LLM's own embeddings of what the frame shows (label-tokens.ts);
 *   3. `sampler`, `align`: the spatial Q-Former pre-trained to keep frame content (no pretrained InstructBLIP
 *      Q-Former either), then aligned with the projector to produce those label tokens from pixels
 *      (token-alignment.ts);
 *   4. `stage1`: frame selection + projector on video captions (spec §2: stage 1 aligns on video-text pairs);
 *   5. `stage2`: every `vlm_att_*` module + LoRA on the LLM, on the questions plus the captions (spec §2).
 *
 * Every phase shows a progress bar and checkpoints under the work folder; a run with `resume` walks the phases
 * again, each continuing from its newest checkpoint (a finished one only reloads its weights), so an interrupted
 * run ends with the weights an uninterrupted one would have had.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AbortedError, CheckpointFormatError, InvalidArgumentError, Rng, readSafetensors, tf } from '@bvllm/core';
import { BvllmModel, QUESTION_TOKENIZER_DIR, WEIGHTS_FILE, collateBvllm, loadAssets, saveModel, stageDataset, trainBvllm, type BvllmSample, type PipelineConfigInput } from '@bvllm/pipeline';
import { CELL_GRID, PAIR_CLASSES, frameLabels, type CaptionSample, type FrameLabels } from '@bvllm/synth';
import {
  CaptionInContextDataset,
  ConcatDataset,
  stage1Config,
  stage2Config,
  train,
  type InstructSample,
  type ProgressSink,
  type TrainDataset,
  type TrainResult,
} from '@bvllm/trainer';
import { decodeVideo, preprocessClip, samplingOptionsSchema } from '@bvllm/vision-encoder';
import { collateLabelTokens, labelTokenLoss, videoCellLabels, type LabelTokenSample } from './label-tokens.js';
import { mixedBatches, poolBatches, renderedBatches, type FrameLabelTensors, type PretrainBatchSource } from './pretrain-batches.js';
import { normaliseVisualTokens, pretrainSpatialSampler } from './sampler-pretrain.js';
import type { PhaseRun } from './step-loop.js';
import { buildTinyAssets, checkDataFits, hasTinyAssets, isTrainingVideo, readScenes, readSplit, readSynthSettings, trainingCaptions, type Entry } from './tiny-assets.js';
import { tinyPipelineConfig } from './tiny-config.js';
import { alignVisualTokens } from './token-alignment.js';
import { pretrainVision } from './vision-pretrain.js';

/** The recipe's phases, in the order they run; each checkpoints under `<workDir>/<phase>`. */
export const TINY_PHASES = ['vision', 'lm', 'lm-labels', 'sampler', 'align', 'stage1', 'stage2'] as const;
export type TinyPhase = (typeof TINY_PHASES)[number];

/** What each phase is called on its progress bar and in the log. */
const PHASE_LABELS: Record<TinyPhase, string> = {
  vision: 'vision pre-training',
  lm: 'LLM warm-up, captions',
  'lm-labels': 'LLM warm-up, label tokens',
  sampler: 'spatial Q-Former pre-training',
  align: 'alignment with the label tokens',
  stage1: 'stage 1',
  stage2: 'stage 2',
};

export interface TinyRecipeOptions {
  /** A @bvllm/synth output folder (train/val/test JSON + videos). */
  dataDir: string;
  /** Where the model folder is written. */
  outDir: string;
  /** Checkpoints, metrics and the tokenizer files of the run. */
  workDir: string;
  seed: number;
  /** Architecture overrides (the ablations swap stage kinds here). */
  overrides?: Partial<PipelineConfigInput>;
  /**
   * A model folder from an earlier run's phases 1–2 (`<workDir>/base`): its tokenizers are kept as they are (never
   * relearned; data that needs words they lack is a VocabularyMismatchError), its vision tower and LLM are reused,
   * and only phases 3–5 run. The ablations share one base, so they differ only in the stage being ablated.
   */
  base?: string;
  /**
   * The frame-feature cache of stages 1 and 2 (default `<workDir>/features`). Entries are keyed by the tower's
   * weights, so runs from one base (the ablations) can share a folder and decode each video once.
   */
  featureCacheDir?: string;
  /** Steps of the vision tower's pre-training (default 12000; see vision-pretrain.ts). */
  visionSteps?: number;
  /** Training videos whose decoded frames (4 each) the tower and spatial Q-Former pre-train on (default 1000). */
  pretrainVideos?: number;
  /**
   * Half of each pre-training batch rendered on the fly from fresh scenes of the benchmark's generator (default
   * true; see pretrain-batches.ts). Off, the tower and spatial Q-Former see only the decoded frames.
   */
  renderedFrames?: boolean;
  /** Steps of the spatial Q-Former's reconstruction pre-training (default 4000; see sampler-pretrain.ts). */
  samplerSteps?: number;
  /** Epochs of the warm-up reading captions (default 3). */
  lmEpochs?: number;
  /** Epochs of the warm-up reading label tokens (default 2; label-tokens.ts). */
  labelEpochs?: number;
  /** Steps of the visual path's alignment with the label tokens (default 3000; token-alignment.ts). */
  alignSteps?: number;
  /**
   * The warm-up's learning rate (default 5e-4). Measured on this benchmark: at 5e-4 a from-scratch 2-layer LLM learns
   * to answer from the caption in its context; at 2e-3 it settles on the questions' priors and never reads.
   */
  lmLr?: number;
  /** Epochs of stage 1 (default 2). */
  stage1Epochs?: number;
  /** Epochs of stage 2 (default 1). */
  stage2Epochs?: number;
  /** Updates (or steps) between checkpoints of every phase (default 200); each phase also saves after its last. */
  checkpointEvery?: number;
  /** Continue the run in `workDir` where it stopped (it must be the same run: same data, seed, budgets, base). */
  resume?: boolean;
  /** Checked between updates; on abort the current phase saves a checkpoint, then AbortedError is thrown. */
  signal?: AbortSignal;
  /** Stops the run once `phase` has done `step` updates, checkpointed there, as an interrupted run would (AbortedError). */
  stopAt?: { phase: TinyPhase; step: number };
  log?: (line: string) => void;
  /** The phases' progress bars (default process.stderr). */
  progress?: ProgressSink;
}

/** Decoded frames of the pre-training steps with what each shows. */
interface PretrainFrames {
  /** Preprocessed pixels `[F, S, S, 3]`. */
  pixels: tf.Tensor4D;
  labels: FrameLabelTensors;
}

/** The first `videos` training videos, 4 frames each, labelled from the benchmark's `scenes.json`. */
async function pretrainFrames(dataDir: string, entries: Entry[], size: number, grid: number, videos: number): Promise<PretrainFrames> {
  const scenes = new Map(readScenes(dataDir).map((record) => [record.video, record.scene]));
  const relative = [...new Set(entries.filter((e) => e.video).map((e) => e.video!))].slice(0, videos);
  const pixels: Float32Array[] = [];
  const labels: FrameLabels[] = [];
  for (const video of relative) {
    const scene = scenes.get(video);
    if (!scene) throw new InvalidArgumentError('dataDir', `scenes.json has no scene for ${video}`);
    const decoded = await decodeVideo(join(dataDir, video), samplingOptionsSchema.parse({ mode: 'uniform', numFrames: 4 }));
    decoded.frames.forEach((rgb, i) => {
      pixels.push(preprocessClip(rgb, decoded.width, decoded.height, { shortestEdge: size, cropSize: size }));
      labels.push(frameLabels(scene, Math.round(decoded.timestampsSec[i] * scene.fps), grid));
    });
  }
  const all = new Float32Array(pixels.length * size * size * 3);
  pixels.forEach((p, i) => all.set(p, i * p.length));
  const stack = (pick: (l: FrameLabels) => Int32Array | Float32Array) => labels.flatMap((l) => [...pick(l)]);
  return {
    pixels: tf.tensor4d(all, [pixels.length, size, size, 3]),
    labels: {
      patchColour: tf.tensor2d(stack((l) => l.patchColour), [labels.length, grid * grid], 'int32'),
      patchShape: tf.tensor2d(stack((l) => l.patchShape), [labels.length, grid * grid], 'int32'),
      present: tf.tensor2d(stack((l) => l.present), [labels.length, PAIR_CLASSES]),
      cellPairs: tf.tensor2d(stack((l) => l.cellPairs), [labels.length, CELL_GRID * CELL_GRID * PAIR_CLASSES]),
    },
  };
}

/** Index of the first fresh (never a video) training scene the pre-training renders. */
const FRESH_SCENES_FROM = 1_000_000;

/** Frames of a training video stages 1 and 2 read (uniform, spec §2 D6). */
const TRAIN_FRAMES = 16;

/** Most frames a warm-up sample shows as label tokens: K = 4, what selection keeps (the ablations share this LLM). */
const PICKED_FRAMES = 4;

const isLlmKey = (key: string) => key.startsWith('model.') || key.startsWith('lm_head.');

/** The sizes a tokenizer folder gives the architecture: BPE tokens (special ones included) and WordPiece tokens. */
function assetSizes(dir: string): { vocabSize: number; questionVocabSize: number } {
  const json = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')) as { model: { vocab: object }; added_tokens?: unknown[] };
  const words = readFileSync(join(dir, QUESTION_TOKENIZER_DIR, 'vocab.txt'), 'utf8').split('\n').filter((w) => w.length > 0);
  return { vocabSize: Object.keys(json.model.vocab).length + (json.added_tokens?.length ?? 0), questionVocabSize: words.length };
}

/** One run of the recipe: its options and the model it trains, phase by phase. */
class TinyRun {
  readonly log: (line: string) => void;
  readonly progress: ProgressSink;
  private readonly checkpointEvery: number;

  constructor(
    readonly options: TinyRecipeOptions,
    readonly model: BvllmModel,
    readonly data: { chat: string; captions: string },
  ) {
    this.log = options.log ?? (() => {});
    this.progress = options.progress ?? process.stderr;
    this.checkpointEvery = options.checkpointEvery ?? 200;
  }

  /** How a pre-training phase runs (see step-loop.ts). */
  phaseRun(phase: TinyPhase): PhaseRun {
    const { options } = this;
    return {
      dir: join(options.workDir, phase),
      checkpointEvery: this.checkpointEvery,
      resume: options.resume,
      stopAtStep: options.stopAt?.phase === phase ? options.stopAt.step : undefined,
      signal: options.signal,
      progress: this.progress,
      label: PHASE_LABELS[phase],
    };
  }

  /** The run settings of a trainer phase: checkpoints, resume, interruption and its bar. */
  trainerRun(phase: TinyPhase) {
    const { options } = this;
    return {
      outDir: join(options.workDir, phase),
      resume: options.resume ? 'latest' : undefined,
      stopAtStep: options.stopAt?.phase === phase ? options.stopAt.step : undefined,
      signal: options.signal,
      progress: this.progress,
      label: PHASE_LABELS[phase],
    };
  }

  /** The trainer loop's common settings; checkpointing every `checkpointEvery` updates. */
  loopSettings() {
    return { seed: this.options.seed, microBatchSize: 8, gradientAccumulationSteps: 1, checkpointEvery: this.checkpointEvery, logEvery: 20 };
  }

  /** Logs a phase's first and last loss, or throws AbortedError when `stopAt` ended it early. */
  finish(phase: TinyPhase, result: Pick<TrainResult, 'step' | 'totalSteps' | 'lossHistory'>): void {
    if (result.step < result.totalSteps) throw new AbortedError(`${PHASE_LABELS[phase]} at update ${result.step}`);
    this.logLosses(phase, result.lossHistory);
  }

  logLosses(phase: TinyPhase, losses: readonly number[]): void {
    this.log(`${PHASE_LABELS[phase]}: loss ${losses[0]?.toFixed(3)} → ${losses.at(-1)?.toFixed(3)}`);
  }

  /** The pre-training batches: the decoded frames, half and half with freshly rendered ones unless turned off. */
  pretrainBatches(frames: PretrainFrames): PretrainBatchSource {
    const decoded = poolBatches(frames.pixels, frames.labels);
    if (this.options.renderedFrames === false) return decoded;
    const settings = readSynthSettings(this.options.dataDir);
    // A fixed first index, not the split's size, so the first N training videos of any larger draw get the same model.
    const first = Math.max(FRESH_SCENES_FROM, settings.counts.train);
    return mixedBatches([decoded, renderedBatches(settings, this.model.vision.imageSize, Math.sqrt(this.model.vision.numPatches), first)]);
  }

  /** The warm-up's samples: the training conversations and captions in the chat format of stage 2, the captions in the plain format of stage 1. */
  warmUpDataset(wrap: (d: TrainDataset<InstructSample>) => TrainDataset<InstructSample>): TrainDataset<InstructSample> {
    const dataset = (stage: 'stage1' | 'stage2', annotations: string) =>
      wrap(stageDataset(this.model, (stage === 'stage1' ? stage1Config : stage2Config).parse({ stage, data: { annotations, folder: this.options.dataDir } })));
    return new ConcatDataset([dataset('stage2', this.data.chat), dataset('stage1', this.data.captions)]);
  }

  /** The warm-up's training settings (chat-format stage-2 config with the warm-up's rate). */
  warmUpConfig(epochs: number) {
    return stage2Config.parse({ stage: 'stage2', data: { annotations: this.data.chat, folder: this.options.dataDir }, ...this.loopSettings(), epochs, lr: this.options.lmLr ?? 5e-4 });
  }
}

/** Phase 1: the vision tower, from scratch (no pretrained tower is downloadable). */
async function pretrainTower(run: TinyRun, frames: PretrainFrames): Promise<void> {
  const losses = await pretrainVision(run.model.vision, run.pretrainBatches(frames), { steps: run.options.visionSteps ?? 12000, batchSize: 16, lr: 2e-3, seed: run.options.seed, run: run.phaseRun('vision') });
  run.logLosses('vision', losses);
}

/** Phase 2: the LLM, from scratch (no pretrained Qwen2 either), reading captions in place of the video. */
async function warmUpLlm(run: TinyRun, captions: readonly CaptionSample[]): Promise<void> {
  const { model, options } = run;
  const captionIds = new Map(captions.map((c) => [join(options.dataDir, c.video), model.assets.tokenizer.encode(c.conversations[1].value)]));
  const result = await train<InstructSample, BvllmSample[]>({
    model: { store: model.store, trainable: () => isLlmKey, loss: (batch, ctx) => model.loss(batch, ctx) },
    dataset: run.warmUpDataset((d) => new CaptionInContextDataset(d, captionIds)),
    collate: (samples) => collateBvllm(model, samples, new Map()),
    disposeBatch: (batch) => tf.dispose(batch.flatMap((s) => [s.question.inputIds, s.question.attentionMask])),
    config: run.warmUpConfig(options.lmEpochs ?? 3),
    ...run.trainerRun('lm'),
  });
  run.finish('lm', result);
}

/** Phase 2, second half: the LLM reads label tokens of frames picked from each training video (label-tokens.ts). */
async function warmUpLabelReading(run: TinyRun): Promise<void> {
  const { model, options } = run;
  const training = readScenes(options.dataDir).filter((r) => isTrainingVideo(r.video));
  const videos = new Map(training.map((r) => [join(options.dataDir, r.video), videoCellLabels(r.scene, TRAIN_FRAMES)]));
  // The frames each micro-batch shows are drawn from its place in the run, so a resumed run shows the same ones.
  const frames = Rng.fromSeed(options.seed).fork('label-frames');
  const result = await train<InstructSample, LabelTokenSample[]>({
    model: { store: model.store, trainable: () => isLlmKey, loss: (batch) => labelTokenLoss(model, batch) },
    dataset: run.warmUpDataset((d) => d),
    collate: (samples, at) => collateLabelTokens(samples, videos, PICKED_FRAMES, frames.fork(`micro-batch-${at.cursor}`)),
    config: run.warmUpConfig(options.labelEpochs ?? 2),
    ...run.trainerRun('lm-labels'),
  });
  run.finish('lm-labels', result);
}

/** What a resumed run must share with the run it continues. */
function runRecord(options: TinyRecipeOptions): Record<string, unknown> {
  const { dataDir, seed, overrides, base, visionSteps, pretrainVideos, renderedFrames, samplerSteps, lmEpochs, labelEpochs, alignSteps, lmLr, stage1Epochs, stage2Epochs, checkpointEvery } = options;
  return { dataDir, seed, overrides, base, visionSteps, pretrainVideos, renderedFrames, samplerSteps, lmEpochs, labelEpochs, alignSteps, lmLr, stage1Epochs, stage2Epochs, checkpointEvery };
}

/** Records the run in `<workDir>/run.json`, or, resuming, checks it is the recorded one. */
function claimWorkDir(options: TinyRecipeOptions): void {
  const path = join(options.workDir, 'run.json');
  const record = JSON.stringify(runRecord(options));
  if (existsSync(path)) {
    if (!options.resume) throw new InvalidArgumentError('workDir', `${options.workDir} holds an earlier run; resume it (--resume) or pick another work folder`);
    const saved = readFileSync(path, 'utf8');
    if (saved !== record) throw new CheckpointFormatError(path, `the run there had other settings (${saved}); a resume must be the same run (${record})`);
    return;
  }
  writeFileSync(path, record);
}

/** Runs the whole recipe and writes the model folder; returns the trained model (caller disposes). */
export async function trainTinyModel(options: TinyRecipeOptions): Promise<BvllmModel> {
  mkdirSync(options.workDir, { recursive: true });
  claimWorkDir(options);
  // The tokenizers: the base's, fixed; else built once for the run and kept in the work folder.
  let assetsDir = join(options.workDir, 'assets');
  if (options.base) {
    checkDataFits(options.dataDir, options.base);
    assetsDir = options.base;
  } else if (!hasTinyAssets(assetsDir)) buildTinyAssets(options.dataDir, assetsDir);
  const sizes = assetSizes(assetsDir);
  const log = options.log ?? (() => {});
  log(`tokenizers${options.base ? ` of ${options.base}` : ''}: ${sizes.vocabSize} BPE tokens, ${sizes.questionVocabSize} WordPiece tokens`);
  const model = BvllmModel.create(tinyPipelineConfig(sizes, options.overrides), loadAssets(assetsDir, 128), options.seed);
  try {
    await runPhases(options, model, assetsDir);
  } catch (error) {
    model.dispose();
    throw error;
  }
  return model;
}

async function runPhases(options: TinyRecipeOptions, model: BvllmModel, assetsDir: string): Promise<void> {
  const train0 = readSplit(options.dataDir, 'train');
  const captions = trainingCaptions(options.dataDir);
  const captionData = { annotations: join(options.workDir, 'captions.json'), folder: options.dataDir };
  writeFileSync(captionData.annotations, JSON.stringify(captions));
  // Stage 2 keeps the captions beside the questions, as VideoLLaMA2 mixes captioned video into instruction tuning.
  const tuningData = { annotations: join(options.workDir, 'tuning.json'), folder: options.dataDir };
  writeFileSync(tuningData.annotations, JSON.stringify([...train0, ...captions]));
  const run = new TinyRun(options, model, { chat: tuningData.annotations, captions: captionData.annotations });

  const frames = await pretrainFrames(options.dataDir, train0, model.vision.imageSize, Math.sqrt(model.vision.numPatches), options.pretrainVideos ?? 1000);
  try {
    if (options.base) {
      const tensors = readSafetensors(join(options.base, WEIGHTS_FILE), (key) => /^(vision_tower|model|lm_head)\./.test(key));
      model.store.load(tensors, { allowMissing: (key) => !tensors.has(key) });
      tf.dispose([...tensors.values()]);
      run.log(`vision tower and LLM from ${options.base}`);
    } else {
      await pretrainTower(run, frames);
      await warmUpLlm(run, captions);
      await warmUpLabelReading(run);
      saveModel(model, join(options.workDir, 'base'), assetsDir);
    }
    if (model.spatialSample.kind === 'qformer') {
      const losses = await pretrainSpatialSampler(model, run.pretrainBatches(frames), { steps: options.samplerSteps ?? 4000, batchSize: 16, lr: 2e-3, seed: options.seed, run: run.phaseRun('sampler') });
      run.logLosses('sampler', losses);
    }
    run.log(`visual tokens centred and rescaled by ${normaliseVisualTokens(model, frames.pixels).toFixed(3)} to the token-embedding scale`);
    const aligned = await alignVisualTokens(model, run.pretrainBatches(frames), { steps: options.alignSteps ?? 3000, batchSize: 16, lr: 1e-3, seed: options.seed, run: run.phaseRun('align') });
    run.logLosses('align', aligned);
  } finally {
    tf.dispose([frames.pixels, ...Object.values(frames.labels)]);
  }

  const featureCacheDir = options.featureCacheDir ?? join(options.workDir, 'features');
  const common = { ...run.loopSettings(), numFrames: TRAIN_FRAMES };
  const s1 = await trainBvllm(model, stage1Config.parse({ stage: 'stage1', ...common, data: captionData, epochs: options.stage1Epochs ?? 2 }), { ...run.trainerRun('stage1'), featureCacheDir });
  run.finish('stage1', s1);
  // r = 128 ≥ D = 128 makes the adapters full-rank here; lr 5e-4, not 1e-4, because this LLM is young and the
  // visual path trains with it; not higher, because at 2e-3 the same LLM never learned to read in its warm-up.
  const s2 = await trainBvllm(model, stage2Config.parse({ stage: 'stage2', ...common, data: tuningData, epochs: options.stage2Epochs ?? 1, lr: 5e-4, lora: { dropout: 0 } }), {
    ...run.trainerRun('stage2'),
    featureCacheDir,
  });
  run.finish('stage2', s2);
  saveModel(model, options.outDir, assetsDir);
}
