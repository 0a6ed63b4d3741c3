/**
 * The engines the visual modules answer with (issue #10). `runtime.vision: onnx` encodes frames with an
 * onnxruntime export of the tower; `runtime.frameSelect` / `runtime.spatialSample: onnx` run the two Q-Formers
 * (with their projections, and the projector after the spatial one) on exports of the current weights. Each
 * export is cached on disk under its weights' hash and each session is built on first use, then reused until the
 * model is disposed or trained. Kinds without an exporter (the uniform/all selectors, the pooling samplers) and
 * training always run on tfjs; the temporal merge is cheap and stays on tfjs.
 */
import { ConfigError, tf, type FrameFeatures, type QuestionTokens, type StageContext } from '@bvllm/core';
import { OrtFrameSelect, type QFormerGumbelSelect } from '@bvllm/frame-select';
import { PROJECTOR_KEYS } from '@bvllm/llm-bridge';
import { OrtSpatialSample, type OrtSpatialTokens, type QFormerSample, type SpatialProjectorWeights } from '@bvllm/spatial-sample';
import { OrtVisionEncoder, onnxCacheDir, type FrameEncoder } from '@bvllm/vision-encoder';
import type { BvllmModel, VisualPath } from './bvllm-model.js';
import { inferenceDecoder, providersFromEnv, type InferenceRuntimeOptions } from './llm-runtime.js';
import { moduleRuntime, type ModuleRuntime } from './pipeline-config.js';

/** The visual modules with a runtime of their own. */
export type VisualModule = 'vision' | 'frameSelect' | 'spatialSample';

type Built = { vision: OrtVisionEncoder; frameSelect: OrtFrameSelect; spatialSample: OrtSpatialSample };
const sessions = new WeakMap<BvllmModel, Map<VisualModule, Promise<Built[VisualModule]>>>();

/** Whether the module's configured kind has an ONNX exporter. */
function exportable(model: BvllmModel, module: VisualModule): boolean {
  if (module === 'frameSelect') return model.frameSelect.kind === 'qformer-gumbel';
  if (module === 'spatialSample') return model.spatialSample.kind === 'qformer';
  return true;
}

/**
 * The engine `module` runs on at inference: `BVLLM_VISUAL_RUNTIME` (all three visual modules) if set, else the
 * config's `runtime.<module>`; `tfjs` for a kind without an exporter.
 */
export function visualRuntime(model: BvllmModel, module: VisualModule): ModuleRuntime {
  const env = process.env.BVLLM_VISUAL_RUNTIME;
  let runtime: ModuleRuntime = model.config.runtime[module];
  if (env !== undefined && env !== '') {
    const parsed = moduleRuntime.safeParse(env);
    if (!parsed.success) throw new ConfigError(`BVLLM_VISUAL_RUNTIME is ${JSON.stringify(env)}, expected "tfjs" or "onnx"`, ['runtime', module]);
    runtime = parsed.data;
  }
  return runtime === 'onnx' && exportable(model, module) ? 'onnx' : 'tfjs';
}

/** The projector's two Linears, for the spatial graph to run right after the Q-Former. */
function projectorWeights(model: BvllmModel): SpatialProjectorWeights {
  const vars = model.projector.variables();
  const [first, second] = PROJECTOR_KEYS[model.projector.kind];
  const layer = (key: string) => ({ weight: vars.get(`${key}.weight`)!, bias: vars.get(`${key}.bias`)! });
  return { first: layer(first), second: layer(second), activation: model.projector.kind === 'mlp2x_gelu' ? 'gelu' : 'none' };
}

function build<M extends VisualModule>(model: BvllmModel, module: M, options: InferenceRuntimeOptions): Promise<Built[M]> {
  // The same providers as the decoder: the option, else BVLLM_ORT_PROVIDERS, else CPU.
  const ort = { threads: options.threads, executionProviders: options.executionProviders ?? providersFromEnv() };
  const cacheDir = onnxCacheDir(options.cacheDir);
  const made: Promise<Built[VisualModule]> =
    module === 'vision'
      ? OrtVisionEncoder.create(model.vision, { ...ort, cacheDir, quantize: model.config.runtime.visionQuantize })
      : module === 'frameSelect'
        ? OrtFrameSelect.create(model.frameSelect as QFormerGumbelSelect, cacheDir, ort)
        : OrtSpatialSample.create(model.spatialSample as QFormerSample, cacheDir, { ...ort, projector: projectorWeights(model) });
  return made as Promise<Built[M]>;
}

/** The onnxruntime module for `module`, exported and opened on first use, then reused. */
function ortModule<M extends VisualModule>(model: BvllmModel, module: M, options: InferenceRuntimeOptions): Promise<Built[M]> {
  let byModule = sessions.get(model);
  if (!byModule) sessions.set(model, (byModule = new Map()));
  let session = byModule.get(module) as Promise<Built[M]> | undefined;
  if (!session) {
    session = build(model, module, options);
    // A failed build is not cached: the next question tries again.
    session.catch(() => byModule.delete(module));
    byModule.set(module, session);
  }
  return session;
}

/** The encoder that turns a video into frame features at inference: the tfjs tower or its onnxruntime export. */
export async function inferenceFrameEncoder(model: BvllmModel, options: InferenceRuntimeOptions = {}): Promise<FrameEncoder> {
  return visualRuntime(model, 'vision') === 'onnx' ? ortModule(model, 'vision', options) : model.vision;
}

/**
 * {@link BvllmModel.visualPath} at inference, each Q-Former stage on its configured runtime (spec §1.1 (a)–(e)).
 * The Gumbel noise comes from `context.rng` (or `gumbelNoise`) on both runtimes, so a seed selects the same frames.
 */
export async function inferenceVisualPath(
  model: BvllmModel,
  features: FrameFeatures,
  question: QuestionTokens,
  context: StageContext,
  options: { gumbelNoise?: tf.Tensor2D; runtime?: InferenceRuntimeOptions } = {},
): Promise<VisualPath> {
  const runtimeOptions = options.runtime ?? {};
  const input = { features, question, gumbelNoise: options.gumbelNoise };
  const selection =
    visualRuntime(model, 'frameSelect') === 'onnx' ? await (await ortModule(model, 'frameSelect', runtimeOptions)).apply(input, context) : model.frameSelect.apply(input, context);
  const owned: tf.Tensor[] = [selection.frameWeights, selection.selected];
  try {
    const merged = model.tokenMerge.apply(selection, context);
    owned.push(merged.merged);
    const sampled =
      visualRuntime(model, 'spatialSample') === 'onnx'
        ? await (await ortModule(model, 'spatialSample', runtimeOptions)).apply({ merged, question }, context)
        : model.spatialSample.apply({ merged, question }, context);
    owned.push(sampled.spatialTokens);
    // The spatial graph ends with the projector unless a budget merge had to run between them.
    const projected = (sampled as OrtSpatialTokens).visualEmbeds;
    const visualEmbeds = projected ?? model.projector.apply({ spatialTokens: sampled.spatialTokens }, context);
    return { selection, merged, spatialTokens: sampled.spatialTokens, visualEmbeds };
  } catch (error) {
    tf.dispose(owned);
    throw error;
  }
}

/**
 * Exports (or finds in the cache) and opens every onnx module of `model` now, the decoder included, so the first
 * question does not pay for it: a server calls it before it listens.
 */
export async function prepareInference(model: BvllmModel, options: InferenceRuntimeOptions = {}): Promise<void> {
  const visual = (['vision', 'frameSelect', 'spatialSample'] as const).filter((module) => visualRuntime(model, module) === 'onnx');
  await Promise.all([inferenceDecoder(model, options), ...visual.map((module) => ortModule(model, module, options))]);
}

/** Frees the visual modules' sessions; the next question rebuilds them from the current weights (after training). */
export async function releaseVisualRuntime(model: BvllmModel): Promise<void> {
  const byModule = sessions.get(model);
  sessions.delete(model);
  for (const session of byModule?.values() ?? []) {
    const built = await session.catch(() => undefined);
    await built?.release();
  }
}
