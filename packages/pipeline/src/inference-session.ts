/**
 * One inference path, owned by the caller (issue #18 item 3; spec §1.1, §1.2, §3):
 *
 *   video ─► frames in chunks ─► tower (onnx) ─► cls [T, Cv], feature [T, Cv] in memory; patches ─► PatchStore
 *   question ─► BERT ids ─► selection scores (onnx) ─► W [K, T] ─► X = W · LN_t(P), reading only weighted frames
 *            ─► temporal merge [K', N, Cv] ─► spatial Q-Former + projector (onnx) ─► V [K'·R, D]
 *   chat prompt ─► embed (onnx) with V at <video> ─► Qwen2 decoder (onnx) ─► answer
 *
 * An `InferenceSession` holds the onnxruntime sessions of the four modules (and the small runtime-neutral stages:
 * temporal merge, uniform/all selection, pool samplers); `close()` releases them. `open(modelDir)` never builds a
 * tfjs copy of the weights once the model folder's export exists (`<dir>/onnx/` or the export cache, see
 * `exportModules`); `fromModel(model)` exports a model trained in memory (LoRA merged) the same way. The CLI, the
 * server, `VideoChat` and eval all answer through one session.
 */
import { join } from 'node:path';
import { ConfigError, Rng, finiteSource, storeSource, tf, type FiniteCheckOptions, type FrameSelection, type QuestionTokens, type StageContext, type WeightSource } from '@bvllm/core';
import { frameSelectRegistry, frameWeightsFromScores, uniformFrameIndices, type FrameSelectStage, type QFormerGumbelConfig, type QFormerGumbelSelect } from '@bvllm/frame-select';
import { ChatTemplate, asCausalDecoder, isLoraKey, streamText, tokenizeChat, type CausalDecoder, type FinishReason, type GenerationConfigInput, type GenerationPrompt } from '@bvllm/llm-bridge';
import { spatialSampleRegistry } from '@bvllm/spatial-sample';
import { tokenMergeRegistry, type TokenMergeStage } from '@bvllm/token-merge';
import { samplingOptionsSchema, type SamplingInput } from '@bvllm/vision-encoder';
import type { BvllmAssets, BvllmModel, VisualPath } from './bvllm-model.js';
import { chatMessages, spliceEmbeddings, type ChatTurn } from './inference/chat-prompt.js';
import { EncodedVideo, encodeVideo, type SelectionFeature } from './inference/encoded-video.js';
import { OrtSample, OrtSelect, OrtVision, TfjsSample, TfjsSelect, TfjsVision, openOrtDecoder } from './inference/engines.js';
import { MODULES_DIR, exportedModules, fillFromSource, folderExportSource, frameSelectSpecOf, hasExporter, projectorFrom, storeFingerprint, type ExportModulesOptions, type ModulesManifest } from './inference/export-modules.js';
import { TfjsFrameMix, type FrameMix, type SampleModule, type SelectModule, type VisionModule } from './inference/modules.js';
import { exportCacheDir, resolveOrtOptions, type OrtOptions } from './inference/ort-options.js';
import { readSelection } from './inference/selection-read.js';
import { loadAssets, loadModel, warn, WEIGHTS_FILE } from './model-dir.js';
import { checkModelFolder, unusedWeightsNotice } from './model-folder-check.js';
import { moduleRuntime, withSlot, type ModuleRuntime, type PipelineConfig } from './pipeline-config.js';

export type { ChatTurn } from './inference/chat-prompt.js';

/** What the visual path chose, for logs, `--json` and the frame strip. */
export interface SelectionSummary {
  /** Kept frames in the order the LLM sees them. */
  frames: { frameIndex: number; timestampSec: number; weight: number; mergedQueries: number[] }[];
  /** Each query's weights over the T frames. [K][T] */
  frameWeights: number[][];
  visualTokens: number;
  promptTokens: number;
  /** Frames whose patches selection read back (of T). */
  framesRead: number;
}

export interface AskOptions {
  /** Seeds the Gumbel noise of frame selection (D4) and sampling. Default 0. */
  seed?: number;
  /** Overrides of the model's generation defaults (maxNewTokens, temperature, topP, …). */
  generation?: GenerationConfigInput;
  /**
   * The spatial token budget θ for this question in place of the model's (spec §1.1 (d)): fewer visual tokens per
   * kept frame (`maxVisualTokens` bounds what a θ gives). `null`: R tokens per frame.
   */
  tokenBudget?: number | null;
  signal?: AbortSignal;
}

export interface AskResult {
  finishReason: FinishReason;
  selection: SelectionSummary;
}

/** A question turned into what the decoder continues, with what the visual path chose. */
export interface AnswerPrompt {
  /** The chat prompt's embeddings `[1, L, D]` with the visual embeddings spliced at `<video>`. */
  prompt: GenerationPrompt;
  selection: SelectionSummary;
}

/**
 * `nonFinite` (from FiniteCheckOptions): a NaN or Infinity weight of a model folder is a NonFiniteWeightsError as
 * the export reads it (default), or only a warning with `'warn'`.
 */
export interface InferenceSessionOptions extends OrtOptions, FiniteCheckOptions {
  /** Export cache folder; `BVLLM_ONNX_CACHE`, else `~/.cache/bvllm/onnx`. */
  cacheDir?: string;
  /** Quantisation and dtype of a fresh export (defaults: the config's `runtime` fields). */
  export?: Pick<ExportModulesOptions, 'visionQuantize' | 'llmQuantize' | 'qformerQuantize' | 'dtype' | 'onModule'>;
  /**
   * Every module's engine: `onnx` (default) or `tfjs` (needs the tfjs model: `open` then loads it). Absent:
   * `BVLLM_VISUAL_RUNTIME` / `BVLLM_LLM_RUNTIME`, else the config's `runtime.<module>`.
   */
  runtime?: ModuleRuntime;
  /** Feature cache folder: encoded videos (patches as float16) are kept there for later questions. */
  featureCacheDir?: string;
  /** Float32 patch bytes held in memory per video before they spill to a temp float16 file. Default 64 MiB. */
  patchMemoryBytes?: number;
  /** Selection reads a frame's patches only if its weight exceeds this in some row (see `readSelection`). 0: exact. */
  selectionEpsilon?: number;
}

export interface EncodeVideoOptions {
  /** Overrides of the model's inference sampling (1 fps by default, spec §3). */
  sampling?: SamplingInput;
  /** Feature cache folder for this video; default the session's `featureCacheDir`. */
  featureCacheDir?: string;
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

type Module = 'vision' | 'frameSelect' | 'spatialSample' | 'llm';

/** Milliseconds of one visual path's stages: selection (scores and the patch reads + mix), merge, sampling + projector. */
export interface StageTimings {
  select?: number;
  merge?: number;
  sample?: number;
}

/** Each module's engine: the option, else the environment, else the config; `tfjs` for a kind without an exporter. */
function runtimes(config: PipelineConfig, option?: ModuleRuntime): Record<Module, ModuleRuntime> {
  const env = (name: string, module: Module): ModuleRuntime | undefined => {
    const value = process.env[name];
    if (value === undefined || value === '') return undefined;
    const parsed = moduleRuntime.safeParse(value);
    if (!parsed.success) throw new ConfigError(`${name} is ${JSON.stringify(value)}, expected "tfjs" or "onnx"`, ['runtime', module]);
    return parsed.data;
  };
  const pick = (module: Module, envName: string) => option ?? env(envName, module) ?? config.runtime[module];
  return {
    vision: pick('vision', 'BVLLM_VISUAL_RUNTIME'),
    frameSelect: hasExporter(config, 'frameSelect') ? pick('frameSelect', 'BVLLM_VISUAL_RUNTIME') : 'tfjs',
    spatialSample: hasExporter(config, 'spatialSample') ? pick('spatialSample', 'BVLLM_VISUAL_RUNTIME') : 'tfjs',
    llm: pick('llm', 'BVLLM_LLM_RUNTIME'),
  };
}

/** The parts a session is assembled from. */
interface Parts {
  config: PipelineConfig;
  assets: BvllmAssets;
  runtimes: Record<Module, ModuleRuntime>;
  vision: VisionModule;
  select?: SelectModule;
  /** The qformer-gumbel selector's parsed config (with defaults), when it is the selector. */
  selectConfig?: QFormerGumbelConfig;
  mix: FrameMix;
  /** uniform / all: frames picked without the question. */
  fixedSelect?: FrameSelectStage;
  tokenMerge: TokenMergeStage;
  sample: SampleModule;
  decoder: CausalDecoder;
  /** The export folder and its manifest, when any module runs on onnx. */
  exportDir?: string;
  manifest?: ModulesManifest;
  /** Runs on close: releases what the session built (never a caller's model). */
  release: () => Promise<void>;
}

export class InferenceSession {
  readonly config: PipelineConfig;
  readonly assets: BvllmAssets;
  readonly template: ChatTemplate;
  /** The engine each module runs on. */
  readonly runtimes: Readonly<Record<Module, ModuleRuntime>>;
  readonly vision: VisionModule;
  readonly decoder: CausalDecoder;
  /** Where the ONNX modules were read from (a model folder's `onnx/` or the export cache). */
  readonly exportDir?: string;
  readonly manifest?: ModulesManifest;
  private closed = false;

  private constructor(
    private readonly parts: Parts,
    private readonly options: InferenceSessionOptions,
  ) {
    this.config = parts.config;
    this.assets = parts.assets;
    this.template = ChatTemplate.forTokenizer(parts.assets.tokenizer);
    this.runtimes = parts.runtimes;
    this.vision = parts.vision;
    this.decoder = parts.decoder;
    this.exportDir = parts.exportDir;
    this.manifest = parts.manifest;
  }

  /**
   * A session on a model folder. Its ONNX modules come from `<dir>/onnx/` when that export is of the folder's
   * current weights, else from the export cache, exported there on a miss (one module at a time).
   */
  static async open(modelDir: string, options: InferenceSessionOptions = {}): Promise<InferenceSession> {
    // Headers, kinds and every config field first: a hostile folder fails here, before any allocation (issue #20).
    const { raw, config, unexpected } = checkModelFolder(modelDir);
    const chosen = runtimes(config, options.runtime);
    // A tfjs engine runs on the tfjs model, so only then is one built (runtimes() gives the stages without an
    // exporter 'tfjs' too, but those run runtime-neutral from small weights).
    const onTfjs = (['vision', 'llm'] as const).some((m) => chosen[m] === 'tfjs') || (['frameSelect', 'spatialSample'] as const).some((m) => hasExporter(config, m) && chosen[m] === 'tfjs');
    // loadModel gives the same notice on the tfjs path.
    if (unexpected.length && !onTfjs) warn(options, unusedWeightsNotice(modelDir, unexpected));
    if (onTfjs) {
      const model = loadModel(modelDir, options);
      try {
        const session = await InferenceSession.fromModel(model, options);
        const release = session.parts.release;
        session.parts.release = async () => {
          await release();
          model.dispose();
        };
        return session;
      } catch (error) {
        model.dispose();
        throw error;
      }
    }
    // As loadModel reads them, so a session and the tfjs model tokenize a question alike.
    const assets = loadAssets(modelDir, typeof raw.questionMaxLength === 'number' ? raw.questionMaxLength : undefined);
    let source: WeightSource | undefined;
    // Every tensor the export or the small stages read is checked for NaN / Infinity as it is read. A folder that
    // keeps its stage-2 LoRA unmerged (as training saves it) is read merged, as the tfjs model runs it.
    const { read, fingerprint } = folderExportSource(modelDir, config, WEIGHTS_FILE, (s) => finiteSource(s, options));
    const weights = (): WeightSource => (source ??= read());
    try {
      const { dir, manifest } = await exportedModules(read, config, exportCacheDir(options.cacheDir), {
        ...options.export,
        fingerprint,
        preferred: join(modelDir, MODULES_DIR),
      });
      const parts = await onnxParts(config, assets, chosen, dir, manifest, weights, options);
      const release = parts.release;
      parts.release = async () => {
        await release();
        source?.close();
      };
      return new InferenceSession(parts, options);
    } catch (error) {
      source?.close();
      throw error;
    }
  }

  /**
   * A session on a model in memory (e.g. just trained). Modules on onnx are exported from the store's current
   * values (LoRA merged for the export, then unmerged), cached under a hash of them; modules on tfjs run the model's
   * own stages. The model stays the caller's: close the session before training it further or disposing it.
   */
  static async fromModel(model: BvllmModel, options: InferenceSessionOptions = {}): Promise<InferenceSession> {
    // A pretrained tower or LLM passed to `BvllmModel.create` has its own config (the pipeline config then only
    // documents it): the graphs follow the modules actually in the model.
    const config: PipelineConfig = { ...model.config, vision: { ...model.config.vision, vit: { ...model.vision.model.config } }, llm: { ...model.llm.config } };
    const chosen = runtimes(config, options.runtime);
    const onnx = Object.values(chosen).includes('onnx');
    let exportDir: string | undefined;
    let manifest: ModulesManifest | undefined;
    if (onnx) {
      const lora = model.lora;
      const mergeHere = lora !== undefined && !lora.merged;
      // The exporters read base weights: the adapter's update must be in them (the fingerprint hashes them too).
      if (mergeHere) lora.merge();
      try {
        ({ dir: exportDir, manifest } = await exportedModules(() => storeSource(model.store), config, exportCacheDir(options.cacheDir), {
          ...options.export,
          fingerprint: storeFingerprint(model.store, (key) => !isLoraKey(key)),
        }));
      } finally {
        // Unmerging restores the adapter's training form (to float32 rounding), as the caller left it.
        if (mergeHere) lora.unmerge();
      }
    }
    const ort = resolveOrtOptions(options);
    const built: { release(): Promise<void> }[] = [];
    try {
      const open = async <T extends { release(): Promise<void> }>(made: Promise<T> | T): Promise<T> => {
        const m = await made;
        built.push(m);
        return m;
      };
      const vars = model.frameSelect.variables();
      const ln = vars.get('vlm_att_ln_temporal.weight');
      const vision = chosen.vision === 'onnx' ? await open(OrtVision.open(config, exportDir!, manifest!, ort)) : new TfjsVision(model.vision, `tfjs:${storeFingerprint(model.vision.model.store)}`);
      const select =
        model.frameSelect.kind !== 'qformer-gumbel'
          ? undefined
          : chosen.frameSelect === 'onnx'
            ? await open(OrtSelect.open(config, exportDir!, ort))
            : new TfjsSelect(model.frameSelect as QFormerGumbelSelect);
      const eps = (model.frameSelect.config as { lnEps: number }).lnEps;
      // On onnx the selection matmul and its LayerNorm run in the selector's mix graph; else on tfjs.
      const mix = select instanceof OrtSelect ? select : await open(new TfjsFrameMix(tf.clone(ln!) as tf.Tensor1D, tf.clone(vars.get('vlm_att_ln_temporal.bias')!) as tf.Tensor1D, eps));
      const sample: SampleModule =
        chosen.spatialSample === 'onnx' ? await open(OrtSample.open(config, exportDir!, manifest!, ort, () => storeSource(model.store))) : new TfjsSample(model.spatialSample, model.projector, false);
      const decoder = chosen.llm === 'onnx' ? await openOrtDecoder(exportDir!, ort) : asCausalDecoder(model.llm);
      const parts: Parts = {
        config,
        assets: model.assets,
        runtimes: chosen,
        vision,
        select,
        selectConfig: select ? (model.frameSelect as QFormerGumbelSelect).config : undefined,
        mix,
        fixedSelect: select ? undefined : model.frameSelect,
        tokenMerge: model.tokenMerge,
        sample,
        decoder,
        exportDir,
        manifest,
        release: async () => {
          await releaseDecoder(decoder);
          for (const m of built) await m.release();
        },
      };
      return new InferenceSession(parts, options);
    } catch (error) {
      for (const m of built) await m.release().catch(() => undefined);
      throw error;
    }
  }

  /** The question as the Q-Formers read it: BERT ids, left-truncated (spec §1.1 "text"). The caller disposes. */
  tokenizeQuestion(question: string): QuestionTokens {
    return this.assets.questionTokenizer.encode(question);
  }

  /**
   * Decodes, samples (1 fps by default, spec §3) and encodes a video, image or frame folder in chunks, or reads it
   * from the feature cache. The caller closes the result.
   */
  async encode(path: string, options: EncodeVideoOptions = {}): Promise<EncodedVideo> {
    this.checkOpen();
    const sampling = samplingOptionsSchema.parse({ ...this.config.vision.sampling, ...options.sampling });
    return encodeVideo(this.vision, path, {
      sampling,
      batchSize: this.config.vision.batchSize,
      selectionFeature: this.selectionFeature(),
      cacheDir: options.featureCacheDir ?? this.options.featureCacheDir,
      patchMemoryBytes: this.options.patchMemoryBytes,
      onProgress: options.onProgress,
      signal: options.signal,
    });
  }

  /** What frame selection scores frames by (the qformer-gumbel selector's `selectionFeature`; `cls` otherwise). */
  selectionFeature(): SelectionFeature {
    return this.parts.selectConfig?.selectionFeature ?? 'cls';
  }

  /**
   * Frame selection → temporal merge → spatial sampling → projector for one question (spec §1.1 (a)–(e)), equal
   * to `BvllmModel.visualPath` at inference. The noise comes from `context.rng` as the tfjs stage draws it (D4).
   * The caller disposes the result (`disposeVisualPath`). `context.timings`, when given, receives each stage's
   * milliseconds.
   */
  async visualPath(video: EncodedVideo, question: QuestionTokens, context: StageContext & { timings?: StageTimings; tokenBudget?: number | null }): Promise<VisualPath & { framesRead: number[] }> {
    this.checkOpen();
    let t0 = performance.now();
    const { selection, framesRead } = await this.select(video, question, context);
    const timings = context.timings;
    if (timings) timings.select = performance.now() - t0;
    const owned: tf.Tensor[] = [selection.frameWeights, selection.selected];
    try {
      t0 = performance.now();
      const merged = this.parts.tokenMerge.apply(selection, context);
      owned.push(merged.merged);
      if (timings) timings.merge = performance.now() - t0;
      t0 = performance.now();
      const { spatialTokens, visualEmbeds } = await this.parts.sample.sample(question, merged, context, context.tokenBudget);
      if (timings) timings.sample = performance.now() - t0;
      return { selection, merged, spatialTokens, visualEmbeds, framesRead };
    } catch (error) {
      tf.dispose(owned);
      throw error;
    }
  }

  private async select(video: EncodedVideo, question: QuestionTokens, context: StageContext): Promise<{ selection: FrameSelection; framesRead: number[] }> {
    const t = video.numFrames;
    const store = video.patches;
    const [n, c] = [store.numPatches, store.width];
    let weights: Float32Array;
    let k: number;
    if (this.parts.select) {
      const cfg = this.parts.selectConfig!;
      k = cfg.numQueries;
      const mode = context.training ? 'gumbel' : cfg.inferenceNoise;
      // Drawn exactly where and as the tfjs stage draws it, so a seed selects the same frames on every engine.
      let noise: Float32Array = new Float32Array(k * t);
      if (mode === 'gumbel') {
        const g = context.rng.gumbel([k, t]);
        noise = (await g.data()) as Float32Array;
        g.dispose();
      }
      const scored = await this.parts.select.score(question, video.feature, t, noise);
      weights = scored.frameWeights;
      if (mode === 'hard') {
        const hard = tf.tidy(() => frameWeightsFromScores(tf.tensor2d(scored.scores, [k, t]), { tau: cfg.tau, mode: 'hard', straightThrough: false }));
        weights = (await hard.data()) as Float32Array;
        hard.dispose();
      }
    } else {
      // uniform / all: one-hot rows on frames picked without the question (spec §5 baselines).
      const fixed = this.parts.fixedSelect!;
      const picks = fixed.kind === 'uniform' ? uniformFrameIndices(t, (fixed.config as { numFrames: number }).numFrames) : Array.from({ length: t }, (_, i) => i);
      k = picks.length;
      weights = new Float32Array(k * t);
      picks.forEach((frame, q) => (weights[q * t + frame] = 1));
    }
    const read = await readSelection(weights, k, store, this.parts.mix, { epsilon: this.parts.select ? this.options.selectionEpsilon : 0 });
    const frameIndices = new Int32Array(k);
    for (let q = 0; q < k; q++) {
      let best = 0;
      for (let f = 1; f < t; f++) if (weights[q * t + f] > weights[q * t + best]) best = f;
      frameIndices[q] = best;
    }
    return {
      selection: {
        frameWeights: tf.tensor2d(weights, [k, t]),
        selected: tf.tensor3d(read.selected, [k, n, c]),
        frameIndices,
        timestampsSec: Array.from(frameIndices, (i) => video.timestampsSec[i]),
      },
      framesRead: read.framesRead,
    };
  }

  /** Runs the visual path for the last user turn and splices its embeddings into the chat prompt (plain values). */
  async prompt(video: EncodedVideo, turns: readonly ChatTurn[], seed = 0, tokenBudget?: number | null): Promise<AnswerPrompt> {
    const question = turns[turns.length - 1];
    if (!question || question.role !== 'user') throw new Error('the last turn must be a user question');
    const tokens = this.tokenizeQuestion(question.content);
    const ids = tokenizeChat(this.assets.tokenizer, this.template, chatMessages(this.config.systemPrompt, turns), { addGenerationPrompt: true });
    const context = { training: false, rng: Rng.fromSeed(seed).fork('frame-select'), tokenBudget };
    const path = await this.visualPath(video, tokens, context);
    try {
      const weights = (await path.selection.frameWeights.array()) as number[][];
      const visual = (await path.visualEmbeds.data()) as Float32Array;
      const { inputsEmbeds, length } = await spliceEmbeddings(this.decoder, ids, visual);
      const selection: SelectionSummary = {
        frames: path.merged.groups.map((group, i) => ({
          frameIndex: path.merged.frameIndices[i],
          timestampSec: path.merged.timestampsSec[i],
          weight: Math.max(...group.map((q) => weights[q][path.merged.frameIndices[i]])),
          mergedQueries: [...group],
        })),
        frameWeights: weights,
        visualTokens: path.visualEmbeds.shape[0],
        promptTokens: length,
        framesRead: path.framesRead.length,
      };
      return { prompt: { inputsEmbeds, promptIds: ids }, selection };
    } finally {
      tf.dispose([path.selection.frameWeights, path.selection.selected, path.merged.merged, path.spatialTokens, path.visualEmbeds, tokens.inputIds, tokens.attentionMask]);
    }
  }

  /** The model's generation defaults under the caller's overrides, with the answer's seed. */
  generation(options: AskOptions = {}): GenerationConfigInput {
    return { ...this.config.generation, ...options.generation, seed: options.seed ?? 0 };
  }

  /** Streams the assistant's next turn after `turns` (the last one a user question) as text deltas. */
  async *stream(video: EncodedVideo, turns: readonly ChatTurn[], options: AskOptions = {}): AsyncGenerator<string, AskResult> {
    const { prompt, selection } = await this.prompt(video, turns, options.seed ?? 0, options.tokenBudget);
    const stream = streamText(this.decoder, this.assets.tokenizer, prompt, this.generation(options), { signal: options.signal });
    for (;;) {
      const next = await stream.next();
      if (next.done) return { finishReason: next.value, selection };
      yield next.value;
    }
  }

  /** Runs {@link stream} to the end. */
  async answer(video: EncodedVideo, turns: readonly ChatTurn[], options: AskOptions = {}): Promise<AskResult & { text: string }> {
    let text = '';
    const stream = this.stream(video, turns, options);
    for (;;) {
      const next = await stream.next();
      if (next.done) return { ...next.value, text };
      text += next.value;
    }
  }

  /** Releases every onnxruntime session and the stages the session built; idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.parts.release();
  }

  private checkOpen(): void {
    if (this.closed) throw new ConfigError('the inference session is closed', ['session']);
  }
}

async function releaseDecoder(decoder: CausalDecoder): Promise<void> {
  if (decoder.runtime === 'onnx') await (decoder as CausalDecoder & { release(): Promise<void> }).release();
}

/** A session's parts on an export folder, the small stages read from `weights`. */
async function onnxParts(
  config: PipelineConfig,
  assets: BvllmAssets,
  chosen: Record<Module, ModuleRuntime>,
  dir: string,
  manifest: ModulesManifest,
  weights: () => WeightSource,
  options: InferenceSessionOptions,
): Promise<Parts> {
  const ort = resolveOrtOptions(options);
  const cv = (config.vision.vit as { hiddenSize: number }).hiddenSize;
  const built: { release(): Promise<void> }[] = [];
  const rng = () => Rng.fromSeed(0);
  try {
    const keep = <T extends { release(): Promise<void> }>(m: T): T => (built.push(m), m);
    const vision = keep(await OrtVision.open(config, dir, manifest, ort));
    const select = hasExporter(config, 'frameSelect') ? keep(await OrtSelect.open(config, dir, ort)) : undefined;
    const source = weights();
    let fixedSelect: FrameSelectStage | undefined;
    let mix: FrameMix;
    if (select) mix = select;
    else {
      // uniform / all: the stage gives the frame picks; its LayerNorm (two [Cv] vectors) runs on tfjs.
      const stage = withSlot('frameSelect', () => frameSelectRegistry.create(config.frameSelect, { rng: rng(), dims: { Cv: cv } }));
      fixedSelect = stage;
      built.push({ release: async () => stage.dispose() });
      const eps = (stage.config as { lnEps: number }).lnEps;
      mix = keep(new TfjsFrameMix(tf.tensor1d(source.read('vlm_att_ln_temporal.weight')), tf.tensor1d(source.read('vlm_att_ln_temporal.bias')), eps));
    }
    const tokenMerge = withSlot('tokenMerge', () => tokenMergeRegistry.create(config.tokenMerge, { rng: rng(), dims: {} }));
    let sample: SampleModule;
    if (hasExporter(config, 'spatialSample')) sample = keep(await OrtSample.open(config, dir, manifest, ort, weights));
    else {
      // Pool samplers: runtime-neutral, with at most small weights of their own.
      const stage = withSlot('spatialSample', () => spatialSampleRegistry.create(config.spatialSample, { rng: rng(), dims: { Cv: cv } }));
      fillFromSource('spatial sample', stage.variables(), source);
      sample = keep(new TfjsSample(stage, projectorFrom(config, source, stage.outDim, cv), true));
    }
    const decoder = await openOrtDecoder(dir, ort);
    return {
      config,
      assets,
      runtimes: chosen,
      vision,
      select,
      selectConfig: select ? frameSelectSpecOf(config).config : undefined,
      mix,
      fixedSelect,
      tokenMerge,
      sample,
      decoder,
      exportDir: dir,
      manifest,
      release: async () => {
        await releaseDecoder(decoder);
        for (const m of built) await m.release();
        tokenMerge.dispose();
      },
    };
  } catch (error) {
    for (const m of built) await m.release().catch(() => undefined);
    throw error;
  }
}
