/**
 * The recipe of the shipped default model `bvllm-tiny`: a B-VLLM small enough to train on a 2-core CPU in
 * minutes, on the synthetic benchmark of @bvllm/synth. Same architecture and stage kinds as the official model
 * (spec §1), scaled down; the steps and their departures from the paper are in the model card.
 *
 *   0. tokenizers learned from the benchmark's text (byte-level BPE for Qwen2, WordPiece for the Q-Formers);
 *   1. the vision tower pre-trained on the training videos' frames mixed with frames rendered from fresh scenes
 *      (no pretrained tower is downloadable; pretrain-batches.ts);
 *   2. the LLM warmed up as a reader, each sample with its video's caption where `<video>` goes (no pretrained
 *      Qwen2 either; reading-warmup.ts), then with label tokens there: per frame and cell, the LLM's own embeddings
 *      of what the frame shows (label-tokens.ts); the spatial Q-Former pre-trained to keep frame content (no
 *      pretrained InstructBLIP Q-Former either), then aligned with the projector to produce those label tokens
 *      from pixels (token-alignment.ts);
 *   3. stage 1: frame selection + projector on video captions (spec §2: stage 1 aligns on video-text pairs);
 *   4. stage 2: every `vlm_att_*` module + LoRA on the LLM, on the questions plus the captions (spec §2).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError, Rng, readSafetensors, tf } from '@bvllm/core';
import { QWEN2_DEFAULT_CHAT_TEMPLATE } from '@bvllm/llm-bridge';
import { captionSamples, parseSynthConfig, type CaptionSample, type Scene, type SynthConfig } from '@bvllm/synth';
import { stage1Config, stage2Config, train, type InstructSample, type ProgressSink, type TrainDataset } from '@bvllm/trainer';
import { decodeVideo, preprocessClip, samplingOptionsSchema } from '@bvllm/vision-encoder';
import { BvllmModel, type BvllmSample } from '../bvllm-model.js';
import { QUESTION_TOKENIZER_DIR, WEIGHTS_FILE, loadAssets, saveModel } from '../model-dir.js';
import type { PipelineConfigInput } from '../pipeline-config.js';
import { collateBvllm, stageDataset, trainBvllm } from '../train-bvllm.js';
import { byteBpeTokenizerJson, trainByteBpe } from './byte-bpe.js';
import { normaliseVisualTokens, pretrainSpatialSampler } from './sampler-pretrain.js';
import { CELL_GRID, PAIR_CLASSES, frameLabels, type FrameLabels } from './frame-labels.js';
import { pretrainVision } from './vision-pretrain.js';
import { mixedBatches, poolBatches, renderedBatches, type FrameLabelTensors, type PretrainBatchSource } from './pretrain-batches.js';
import { CaptionInContextDataset, ConcatDataset } from './reading-warmup.js';
import { collateLabelTokens, labelTokenLoss, videoCellLabels, type LabelTokenSample } from './label-tokens.js';
import { alignVisualTokens } from './token-alignment.js';
import { buildWordPieceVocab } from './wordpiece-vocab.js';

export const TINY_SPECIAL_TOKENS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'] as const;

interface Entry {
  id: string;
  video?: string;
  conversations: { from: string; value: string }[];
  question?: string;
}

const readSplit = (dataDir: string, split: string): Entry[] => JSON.parse(readFileSync(join(dataDir, `${split}.json`), 'utf8')) as Entry[];

/** Only the training split's scenes are ever read for training, so nothing about a test video is seen. */
const isTrainingVideo = (video: string) => video.startsWith('videos/train-');

/**
 * Captions of the training videos, from the benchmark's `scenes.json`: stage 1's video-text pairs (spec §2). Only
 * the training split's, so nothing about a test video is seen in training.
 */
export function trainingCaptions(dataDir: string): CaptionSample[] {
  return captionSamples(readScenes(dataDir), isTrainingVideo);
}

const readScenes = (dataDir: string): { video: string; scene: Scene }[] => JSON.parse(readFileSync(join(dataDir, 'scenes.json'), 'utf8'));

/** Index of the first fresh (never a video) training scene the pre-training renders. */
const FRESH_SCENES_FROM = 1_000_000;

/** The generator settings the benchmark in `dataDir` was made with (its `meta.json`). */
function readSynthSettings(dataDir: string): SynthConfig {
  const meta = JSON.parse(readFileSync(join(dataDir, 'meta.json'), 'utf8')) as { settings: object };
  return parseSynthConfig({ ...meta.settings, outDir: dataDir });
}

/** Learns both tokenizers from the benchmark's text and writes them as HF files into `assetsDir`. */
export function buildTinyAssets(dataDir: string, assetsDir: string, merges = 400): { vocabSize: number; questionVocabSize: number } {
  const entries = [...['train', 'val', 'test'].flatMap((s) => readSplit(dataDir, s)), ...trainingCaptions(dataDir)];
  const texts = entries.flatMap((e) => e.conversations.map((c) => c.value.replace('<video>\n', '')));
  // The chat template's fixed text is in every prompt; learning it keeps prompts short.
  const template = ['system\nYou are a helpful assistant.', 'user\n', 'assistant\n'];
  const { vocab, merges: learned } = trainByteBpe([...texts, ...template, ...template], { merges, specialTokens: TINY_SPECIAL_TOKENS });
  mkdirSync(join(assetsDir, QUESTION_TOKENIZER_DIR), { recursive: true });
  writeFileSync(join(assetsDir, 'tokenizer.json'), JSON.stringify(byteBpeTokenizerJson(vocab, learned, TINY_SPECIAL_TOKENS)));
  const tokenizerConfig = {
    tokenizer_class: 'Qwen2Tokenizer',
    eos_token: '<|im_end|>',
    pad_token: '<|endoftext|>',
    model_max_length: 1024,
    chat_template: QWEN2_DEFAULT_CHAT_TEMPLATE,
  };
  writeFileSync(join(assetsDir, 'tokenizer_config.json'), `${JSON.stringify(tokenizerConfig, null, 2)}\n`);
  const questionVocab = buildWordPieceVocab(entries.flatMap((e) => e.conversations.filter((c) => c.from === 'human').map((c) => c.value.replace('<video>\n', ''))));
  writeFileSync(join(assetsDir, QUESTION_TOKENIZER_DIR, 'vocab.txt'), `${questionVocab.join('\n')}\n`);
  return { vocabSize: vocab.size + TINY_SPECIAL_TOKENS.length, questionVocabSize: questionVocab.length };
}

/** The tiny architecture: the official kinds (spec §1.1) at widths a CPU trains in minutes. */
export function tinyPipelineConfig(sizes: { vocabSize: number; questionVocabSize: number }, overrides: Partial<PipelineConfigInput> = {}): PipelineConfigInput {
  const qformer = { hiddenSize: 64, numLayers: 2, numHeads: 4, intermediateSize: 128, vocabSize: sizes.questionVocabSize, maxPositions: 128, crossAttentionFrequency: 1 };
  return {
    name: 'bvllm-tiny',
    vision: {
      vit: { family: 'instructblip', hiddenSize: 64, intermediateSize: 128, numLayers: 2, numHeads: 4, imageSize: 64, patchSize: 16 },
      sampling: { mode: 'fps', samplesPerSec: 1 },
      trainFrames: 16,
      batchSize: 16,
    },
    questionMaxLength: 128,
    frameSelect: { kind: 'qformer-gumbel', numQueries: 4, numQueryTokens: 8, qformer },
    tokenMerge: { kind: 'row-cosine' },
    spatialSample: { kind: 'qformer', numQueries: 4, tokenBudget: null, qformer },
    projector: { kind: 'linear2' },
    llm: { vocabSize: sizes.vocabSize, hiddenSize: 128, intermediateSize: 256, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositionEmbeddings: 1024, tieWordEmbeddings: true },
    generation: { maxNewTokens: 16 },
    ...overrides,
  };
}

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
   * A model folder from an earlier run's steps 1–2 (`<workDir>/base`): its vision tower and LLM are reused and only
   * stages 1 and 2 run. The ablations share one base, so they differ only in the stage being ablated.
   */
  base?: string;
  /**
   * The frame-feature cache of stages 1 and 2 (default `<workDir>/features`). Entries are keyed by the tower's
   * weights, so runs from one base (the ablations) can share a folder and decode each video once.
   */
  featureCacheDir?: string;
  /** Steps of the vision tower's pre-training (see vision-pretrain.ts). */
  visionSteps?: number;
  /** Training videos whose decoded frames (4 each) the tower and spatial Q-Former pre-train on. */
  pretrainVideos?: number;
  /**
   * Half of each pre-training batch rendered on the fly from fresh scenes of the benchmark's generator (default
   * true; see pretrain-batches.ts). Off, the tower and spatial Q-Former see only the decoded frames.
   */
  renderedFrames?: boolean;
  /** Steps of the spatial Q-Former's reconstruction pre-training (see sampler-pretrain.ts). */
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
  stage1Epochs?: number;
  stage2Epochs?: number;
  log?: (line: string) => void;
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

/** The warm-up's samples: the training conversations and captions in the chat format of stage 2, the captions in the plain format of stage 1. */
function warmUpDataset(model: BvllmModel, options: TinyRecipeOptions, data: { chat: string; captions: string }, wrap: (d: TrainDataset<InstructSample>) => TrainDataset<InstructSample>): TrainDataset<InstructSample> {
  const dataset = (stage: 'stage1' | 'stage2', annotations: string) =>
    wrap(stageDataset(model, (stage === 'stage1' ? stage1Config : stage2Config).parse({ stage, data: { annotations, folder: options.dataDir } })));
  return new ConcatDataset([dataset('stage2', data.chat), dataset('stage1', data.captions)]);
}

/** The pre-training batches: the decoded frames, half and half with freshly rendered ones unless turned off. */
function pretrainBatches(model: BvllmModel, frames: PretrainFrames, options: TinyRecipeOptions): PretrainBatchSource {
  const decoded = poolBatches(frames.pixels, frames.labels);
  if (options.renderedFrames === false) return decoded;
  const settings = readSynthSettings(options.dataDir);
  // A fixed first index, not the split's size, so the first N training videos of any larger draw get the same model.
  const first = Math.max(FRESH_SCENES_FROM, settings.counts.train);
  return mixedBatches([decoded, renderedBatches(settings, model.vision.imageSize, Math.sqrt(model.vision.numPatches), first)]);
}

/** Step 1 of the recipe: the vision tower, from scratch (no pretrained tower is downloadable). */
function pretrainTower(model: BvllmModel, batches: PretrainBatchSource, options: TinyRecipeOptions, log: (line: string) => void): void {
  const losses = pretrainVision(model.vision, batches, { steps: options.visionSteps ?? 12000, batchSize: 16, lr: 2e-3, seed: options.seed });
  log(`vision pre-training: loss ${losses[0].toFixed(3)} → ${losses[losses.length - 1].toFixed(3)}`);
}

/** Frames of a training video stages 1 and 2 read (uniform, spec §2 D6). */
const TRAIN_FRAMES = 16;

/** Most frames a warm-up sample shows as label tokens: K = 4, what selection keeps (the ablations share this LLM). */
const PICKED_FRAMES = 4;

const isLlmKey = (key: string) => key.startsWith('model.') || key.startsWith('lm_head.');

/** The warm-up's training settings (chat-format stage-2 config with the warm-up's rate). */
function warmUpConfig(options: TinyRecipeOptions, annotations: string, epochs: number) {
  return stage2Config.parse({
    stage: 'stage2',
    data: { annotations, folder: options.dataDir },
    seed: options.seed,
    epochs,
    lr: options.lmLr ?? 5e-4,
    microBatchSize: 8,
    gradientAccumulationSteps: 1,
    checkpointEvery: 100_000,
    logEvery: 20,
  });
}

/**
 * Step 2: the LLM, from scratch (no pretrained Qwen2 either): first reading captions in place of the video
 * (reading-warmup.ts), then reading label tokens there (label-tokens.ts), the visual tokens' target layout.
 */
async function warmUpLlm(model: BvllmModel, options: TinyRecipeOptions, captions: readonly CaptionSample[], data: { chat: string; captions: string }, log: (line: string) => void): Promise<void> {
  const llm = { store: model.store, trainable: () => isLlmKey };
  const captionIds = new Map(captions.map((c) => [join(options.dataDir, c.video), model.assets.tokenizer.encode(c.conversations[1].value)]));
  const reading = await train<InstructSample, BvllmSample[]>({
    model: { ...llm, loss: (batch, ctx) => model.loss(batch, ctx) },
    dataset: warmUpDataset(model, options, data, (d) => new CaptionInContextDataset(d, captionIds)),
    collate: (samples) => collateBvllm(model, samples, new Map()),
    disposeBatch: (batch) => tf.dispose(batch.flatMap((s) => [s.question.inputIds, s.question.attentionMask])),
    config: warmUpConfig(options, data.chat, options.lmEpochs ?? 3),
    outDir: join(options.workDir, 'lm'),
    progress: options.progress,
  });
  log(`LLM warm-up, captions: loss ${reading.lossHistory[0]?.toFixed(3)} → ${reading.lossHistory.at(-1)?.toFixed(3)}`);
  await warmUpLabelReading(model, options, data, log);
}

/** Step 2, second half: the LLM reads label tokens of frames picked from each training video (label-tokens.ts). */
export async function warmUpLabelReading(model: BvllmModel, options: TinyRecipeOptions, data: { chat: string; captions: string }, log: (line: string) => void): Promise<void> {
  const training = readScenes(options.dataDir).filter((r) => isTrainingVideo(r.video));
  const videos = new Map(training.map((r) => [join(options.dataDir, r.video), videoCellLabels(r.scene, TRAIN_FRAMES)]));
  const rng = Rng.fromSeed(options.seed).fork('label-frames');
  const result = await train<InstructSample, LabelTokenSample[]>({
    model: { store: model.store, trainable: () => isLlmKey, loss: (batch) => labelTokenLoss(model, batch) },
    dataset: warmUpDataset(model, options, data, (d) => d),
    collate: (samples) => collateLabelTokens(samples, videos, PICKED_FRAMES, rng),
    config: warmUpConfig(options, data.chat, options.labelEpochs ?? 2),
    outDir: join(options.workDir, 'lm-labels'),
    progress: options.progress,
  });
  log(`LLM warm-up, label tokens: loss ${result.lossHistory[0]?.toFixed(3)} → ${result.lossHistory.at(-1)?.toFixed(3)}`);
}

/** Runs the whole recipe and writes the model folder; returns the trained model (caller disposes). */
export async function trainTinyModel(options: TinyRecipeOptions): Promise<BvllmModel> {
  const log = options.log ?? (() => {});
  const assetsDir = join(options.workDir, 'assets');
  const sizes = buildTinyAssets(options.dataDir, assetsDir);
  log(`tokenizers: ${sizes.vocabSize} BPE tokens, ${sizes.questionVocabSize} WordPiece tokens`);
  const assets = loadAssets(assetsDir, 128);
  const model = BvllmModel.create(tinyPipelineConfig(sizes, options.overrides), assets, options.seed);
  const train0 = readSplit(options.dataDir, 'train');
  const captions = trainingCaptions(options.dataDir);
  const captionData = { annotations: join(options.workDir, 'captions.json'), folder: options.dataDir };
  writeFileSync(captionData.annotations, JSON.stringify(captions));
  // Stage 2 keeps the captions beside the questions, as VideoLLaMA2 mixes captioned video into instruction tuning.
  const tuningData = { annotations: join(options.workDir, 'tuning.json'), folder: options.dataDir };
  writeFileSync(tuningData.annotations, JSON.stringify([...train0, ...captions]));

  const frames = await pretrainFrames(options.dataDir, train0, model.vision.imageSize, Math.sqrt(model.vision.numPatches), options.pretrainVideos ?? 1000);
  if (options.base) {
    const tensors = readSafetensors(join(options.base, WEIGHTS_FILE), (key) => /^(vision_tower|model|lm_head)\./.test(key));
    model.store.load(tensors, { allowMissing: (key) => !tensors.has(key) });
    tf.dispose([...tensors.values()]);
    log(`vision tower and LLM from ${options.base}`);
  } else {
    pretrainTower(model, pretrainBatches(model, frames, options), options, log);
    await warmUpLlm(model, options, captions, { chat: tuningData.annotations, captions: captionData.annotations }, log);
    saveModel(model, join(options.workDir, 'base'), assetsDir);
  }
  if (model.spatialSample.kind === 'qformer') {
    const batches = pretrainBatches(model, frames, options);
    const losses = pretrainSpatialSampler(model, batches, { steps: options.samplerSteps ?? 4000, batchSize: 16, lr: 2e-3, seed: options.seed });
    log(`spatial Q-Former pre-training: loss ${losses[0].toFixed(3)} → ${losses[losses.length - 1].toFixed(3)}`);
  }
  log(`visual tokens centred and rescaled by ${normaliseVisualTokens(model, frames.pixels).toFixed(3)} to the token-embedding scale`);
  const aligned = alignVisualTokens(model, pretrainBatches(model, frames, options), { steps: options.alignSteps ?? 3000, batchSize: 16, lr: 1e-3, seed: options.seed });
  log(`alignment with the label tokens: loss ${aligned[0].toFixed(3)} → ${aligned.at(-1)!.toFixed(3)}`);
  tf.dispose([frames.pixels, ...Object.values(frames.labels)]);

  const featureCacheDir = options.featureCacheDir ?? join(options.workDir, 'features');
  const common = { seed: options.seed, microBatchSize: 8, gradientAccumulationSteps: 1, checkpointEvery: 100_000, logEvery: 20, numFrames: TRAIN_FRAMES };
  const s1 = await trainBvllm(model, stage1Config.parse({ stage: 'stage1', ...common, data: captionData, epochs: options.stage1Epochs ?? 2 }), {
    outDir: join(options.workDir, 'stage1'),
    featureCacheDir,
    progress: options.progress,
  });
  log(`stage 1: loss ${s1.lossHistory[0]?.toFixed(3)} → ${s1.lossHistory.at(-1)?.toFixed(3)}`);
  // r = 128 ≥ D = 128 makes the adapters full-rank here; lr 5e-4, not 1e-4, because this LLM is young and the
  // visual path trains with it; not higher, because at 2e-3 the same LLM never learned to read in its warm-up.
  const s2 = await trainBvllm(model, stage2Config.parse({ stage: 'stage2', ...common, data: tuningData, epochs: options.stage2Epochs ?? 1, lr: 5e-4, lora: { dropout: 0 } }), {
    outDir: join(options.workDir, 'stage2'),
    featureCacheDir,
    progress: options.progress,
  });
  log(`stage 2: loss ${s2.lossHistory[0]?.toFixed(3)} → ${s2.lossHistory.at(-1)?.toFixed(3)}`);
  saveModel(model, options.outDir, assetsDir);
  return model;
}

/**
 * Stage swaps for the ablation table (spec §5), at the tiny model's sizes: `uniform` keeps the same K = 4 frames
 * so the comparison is at an equal budget; `pool` gives the same R = 4 tokens per frame (2 × 2 cells of the 4 × 4 grid).
 */
export function tinyAblation(kinds: { frameSelect?: string; tokenMerge?: string; spatialSample?: string }): Partial<PipelineConfigInput> {
  const overrides: Partial<PipelineConfigInput> = {};
  if (kinds.frameSelect === 'uniform') overrides.frameSelect = { kind: 'uniform', numFrames: 4 };
  else if (kinds.frameSelect === 'all') overrides.frameSelect = { kind: 'all' };
  else if (kinds.frameSelect !== undefined && kinds.frameSelect !== 'qformer-gumbel') overrides.frameSelect = { kind: kinds.frameSelect };
  if (kinds.tokenMerge !== undefined && kinds.tokenMerge !== 'row-cosine') overrides.tokenMerge = { kind: kinds.tokenMerge };
  if (kinds.spatialSample === 'pool') overrides.spatialSample = { kind: 'pool', outputGrid: [2, 2], patchGrid: [4, 4] };
  else if (kinds.spatialSample !== undefined && kinds.spatialSample !== 'qformer') overrides.spatialSample = { kind: kinds.spatialSample };
  return overrides;
}
