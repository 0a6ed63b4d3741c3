/**
 * Trains a {@link BvllmModel} on a VideoLLaMA2-format dataset with @bvllm/trainer: stage 1 (frame selection and
 * projector, plain format) or stage 2 (every `vlm_att_*` module plus LoRA on the LLM, chat format), spec §2.
 * Frame features are computed once per video before the loop (uniform `numFrames`, D6), since the tower is frozen.
 */
import { BvllmError, ConfigError, Rng, tf, type FrameFeatures } from '@bvllm/core';
import { DatasetError, InstructDataset, STAGE2_LORA_DEFAULTS, train, type InstructSample, type ProgressSink, type Stage2Lora, type TrainingConfig, type TrainResult } from '@bvllm/trainer';
import { FeatureCache, samplingOptionsSchema } from '@bvllm/vision-encoder';
import type { BvllmModel, BvllmSample } from './bvllm-model.js';

export interface TrainBvllmOptions {
  outDir: string;
  resume?: string;
  /** A feature cache folder, so a second run (or the other stage) never re-decodes the videos. */
  featureCacheDir?: string;
  progress?: ProgressSink;
  /** Names the run on its progress bar (a recipe running several). */
  label?: string;
  signal?: AbortSignal;
  /** Ends the run after this update, with a checkpoint there, as an interrupted job would. */
  stopAtStep?: number;
  onFeatures?: (done: number, total: number) => void;
}

/** The dataset of a stage: plain format for stage 1, the chat template for stage 2 (spec §2). */
export function stageDataset(model: BvllmModel, config: TrainingConfig): InstructDataset {
  return InstructDataset.fromFile(config.data.annotations, {
    folder: config.data.folder,
    tokenizer: model.assets.tokenizer,
    format: config.stage === 'stage1' ? 'plain' : 'chat',
    chat: model.template,
    modelMaxLength: config.modelMaxLength,
  });
}

/** Features of every video the dataset references, uniform `numFrames` per video (spec §2, D6). */
export async function precomputeFeatures(
  model: BvllmModel,
  dataset: InstructDataset,
  numFrames: number,
  options: Pick<TrainBvllmOptions, 'featureCacheDir' | 'onFeatures' | 'signal'> = {},
): Promise<Map<string, FrameFeatures>> {
  const paths = new Set<string>();
  for (let i = 0; i < dataset.length; i++) {
    try {
      const path = dataset.get(i).mediaPath;
      if (path) paths.add(path);
    } catch {
      // The loop skips and logs the sample itself; here it only has no video to encode.
    }
  }
  const cache = options.featureCacheDir ? new FeatureCache(options.featureCacheDir) : undefined;
  const encodeOptions = { sampling: samplingOptionsSchema.parse({ mode: 'uniform', numFrames }), batchSize: model.config.vision.batchSize, signal: options.signal };
  const features = new Map<string, FrameFeatures>();
  let done = 0;
  for (const path of paths) {
    try {
      features.set(path, cache ? (await cache.getOrCompute(path, model.vision, encodeOptions)).features : await model.vision.encodeVideo(path, encodeOptions));
    } catch (error) {
      // An undecodable video (or a file that is no allowed media) condemns its samples, which the loop skips; it must not stop the run.
      if (!(BvllmError.isInstance(error) && (error.code === 'VIDEO_DECODE' || error.code === 'MEDIA_UNSUPPORTED'))) throw error;
    }
    options.onFeatures?.(++done, paths.size);
  }
  return features;
}

/**
 * A stage-2 `lora` block against the adapter the model already has: every field that differs, as
 * `lora.rank: 4 in the config, r = 128 in the model`. Training would otherwise go on with the model's adapter and
 * silently ignore the block (issue #20 item 7).
 */
function loraMismatch(wanted: Stage2Lora, has: { r: number; alpha: number; dropout: number; targetModules: readonly string[] }): { field: keyof Stage2Lora; text: string }[] {
  const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x) => b.includes(x));
  const fields: { field: keyof Stage2Lora; text: string }[] = [];
  if (wanted.rank !== has.r) fields.push({ field: 'rank', text: `lora.rank: ${wanted.rank} in the config, r = ${has.r} in the model` });
  if (wanted.alpha !== has.alpha) fields.push({ field: 'alpha', text: `lora.alpha: ${wanted.alpha} in the config, ${has.alpha} in the model` });
  if (wanted.dropout !== has.dropout) fields.push({ field: 'dropout', text: `lora.dropout: ${wanted.dropout} in the config, ${has.dropout} in the model` });
  if (!same(wanted.targets, has.targetModules)) fields.push({ field: 'targets', text: `lora.targets: ${wanted.targets.join(', ')} in the config, ${has.targetModules.join(', ')} in the model` });
  return fields;
}

/**
 * Runs one training stage. Stage 2 attaches LoRA (the config's `lora`, else the spec's defaults) when the model has
 * none; a model that has one trains it, and a `lora` block that differs from it is a ConfigError naming each field.
 */
export async function trainBvllm(model: BvllmModel, config: TrainingConfig, options: TrainBvllmOptions): Promise<TrainResult> {
  if (config.stage === 'stage2') {
    if (model.lora && config.lora) {
      const differs = loraMismatch(config.lora, model.lora.config);
      if (differs.length)
        throw new ConfigError(`stage-2 config: ${differs.map((d) => d.text).join('; ')}; omit the lora block to train the model's own adapter`, ['lora', differs[0]!.field]);
    }
    if (!model.lora) {
      const lora = config.lora ?? STAGE2_LORA_DEFAULTS;
      model.attachLora({ r: lora.rank, alpha: lora.alpha, dropout: lora.dropout, targetModules: [...lora.targets] }, Rng.fromSeed(config.seed).fork('lora'));
    }
  }
  const dataset = stageDataset(model, config);
  const features = await precomputeFeatures(model, dataset, config.numFrames, options);
  if (model.lora) model.lora.training = true;
  try {
    return await train<InstructSample, BvllmSample[]>({
      model,
      dataset,
      collate: (samples) => collateBvllm(model, samples, features),
      // Features belong to the run (reused every epoch); only the per-batch question ids are freed.
      disposeBatch: (batch) => tf.dispose(batch.flatMap((s) => [s.question.inputIds, s.question.attentionMask])),
      config,
      outDir: options.outDir,
      resume: options.resume,
      progress: options.progress,
      label: options.label,
      signal: options.signal,
      stopAtStep: options.stopAtStep,
    });
  } finally {
    if (model.lora) model.lora.training = false;
    for (const f of features.values()) tf.dispose([f.cls, f.patches]);
  }
}

/** InstructSamples → BvllmSamples: cached features and the BERT-tokenised question (spec §1.2 "training"). */
export function collateBvllm(model: BvllmModel, samples: readonly InstructSample[], features: ReadonlyMap<string, FrameFeatures>): BvllmSample[] {
  return samples.map((sample) => {
    const f = sample.mediaPath ? features.get(sample.mediaPath) : undefined;
    if (sample.mediaPath && !f) throw new DatasetError(sample.id, `video ${sample.mediaPath} could not be decoded`);
    return { features: f, question: model.tokenizeQuestion(sample.question), inputIds: sample.inputIds, labels: sample.labels };
  });
}
