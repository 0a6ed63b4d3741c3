/**
 * The four ONNX modules of a model, written from a {@link WeightSource} and a pipeline config into one folder with
 * a small manifest (issue #18):
 *
 *   <dir>/manifest.json          format, the export key, what each file is, the options
 *   <dir>/vision.onnx            the tower: pixels [B, S, S, 3] → tokens (spec §1.0)
 *   <dir>/frame-select.onnx      qformer-gumbel scores and frame weights (spec §1.1 (a)); absent for uniform/all
 *   <dir>/spatial-sample.onnx    the spatial Q-Former and the projector after it (spec §1.1 (c), (e)); absent for pools
 *   <dir>/llm/                   Qwen2 in the transformers.js layout (embed_tokens.onnx, decoder_model_merged.onnx)
 *
 * Inside a model folder the export lives in `<model>/onnx/` (`bvllm convert` writes it there); otherwise in the
 * export cache under `modules-<key>`, where the key hashes a cheap fingerprint of the weights (see
 * {@link folderFingerprint}, {@link storeFingerprint}), the exporter versions, the config and the options. A LoRA
 * must already be merged into the source (`loraMergedSource`, {@link folderExportSource} for a folder's own, or
 * `lora.merge()` before `storeSource`): adapter keys are never read.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BvllmError, ConfigError, Rng, TensorSource, WeightsError, tf, type ParameterStore, type WeightSource } from '@bvllm/core';
import { inFolderLoraMergedSource, isLoraKey, loraConfig } from '@bvllm/llm-bridge';
import { FRAME_SELECT_EXPORTER_VERSION, FRAME_SELECT_ONNX_FILE, exportFrameSelectOnnx, qformerGumbelConfig, type FrameSelectSpec } from '@bvllm/frame-select';
import { PROJECTOR_KEYS, QWEN2_ONNX_EXPORTER_VERSION, exportQwen2Onnx, parseQwen2Config, projectorRegistry, type Projector } from '@bvllm/llm-bridge';
import { exportCached, sourceWeights } from '@bvllm/onnx';
import { SPATIAL_EXPORTER_VERSION, SPATIAL_ONNX_FILE, exportSpatialSampleOnnx, qformerSampleConfig, type SpatialSampleSpec } from '@bvllm/spatial-sample';
import { VISION_EXPORTER_VERSION, VISION_ONNX_FILE, exportVisionEncoderOnnx, vitConfigSchema, vitWeightsFrom } from '@bvllm/vision-encoder';
import { parsePipelineConfig, withSlot, type PipelineConfig, type PipelineConfigInput, type QuantizeSetting } from '../pipeline-config.js';

/** The manifest's file name inside an export folder. */
export const MODULES_MANIFEST = 'manifest.json';
/** Where an export sits inside a model folder. */
export const MODULES_DIR = 'onnx';
export const MODULES_FORMAT = 'bvllm-onnx-modules';
export const MODULES_FORMAT_VERSION = 1;
/** Bumped when this file changes what it writes. */
export const MODULES_EXPORTER_VERSION = 'modules-1';
/** The LLM's folder inside an export (`OrtDecoder.load` reads it). */
export const LLM_MODULE_DIR = 'llm';

export type ModuleName = 'vision' | 'frameSelect' | 'spatialSample' | 'llm';

export interface ExportModulesOptions {
  /** Quantisation of the tower's MatMuls; default the config's `runtime.visionQuantize`. */
  visionQuantize?: QuantizeSetting;
  /** Quantisation of the decoder's MatMuls (LM head included); default the config's `runtime.llmQuantize`. */
  llmQuantize?: QuantizeSetting;
  /** Quantisation of both Q-Formers' MatMuls (and the projector's); default the config's `runtime.qformerQuantize`. */
  qformerQuantize?: QuantizeSetting;
  /** Weight dtype of the graphs (graph inputs and outputs stay float32). Default `float32`. */
  dtype?: 'float32' | 'float16';
  /** Recorded in the manifest and part of its key, so a later open can tell the export is of these weights. */
  fingerprint?: string;
  /** Called before each module is written, e.g. for a progress line. */
  onModule?: (module: ModuleName, index: number, total: number) => void;
}

export interface ModulesManifest {
  format: typeof MODULES_FORMAT;
  formatVersion: typeof MODULES_FORMAT_VERSION;
  /** {@link modulesKey}: equal keys mean the same weights, config, exporters and options. */
  key: string;
  fingerprint: string;
  exporters: Record<string, string>;
  /** `qformerQuantize` only when not `none`, so exports from before it existed keep their keys. */
  options: { visionQuantize: QuantizeSetting; llmQuantize: QuantizeSetting; qformerQuantize?: QuantizeSetting; dtype: 'float32' | 'float16' };
  /** Files relative to the export folder; a stage without an exporter has no entry (it runs runtime-neutral). */
  modules: { vision: string; frameSelect?: string; spatialSample?: { file: string; projector: boolean }; llm: string };
}

/** An export folder that is not one, or one of a format this release does not read. */
export class ModulesManifestError extends BvllmError {
  constructor(
    readonly dir: string,
    reason: string,
  ) {
    super('CHECKPOINT_FORMAT', `${dir}: ${reason}`);
    this.name = 'ModulesManifestError';
  }
}

const EXPORTERS = {
  modules: MODULES_EXPORTER_VERSION,
  vision: VISION_EXPORTER_VERSION,
  frameSelect: FRAME_SELECT_EXPORTER_VERSION,
  spatialSample: SPATIAL_EXPORTER_VERSION,
  llm: `qwen2-onnx-${QWEN2_ONNX_EXPORTER_VERSION}`,
};

function resolvedOptions(config: PipelineConfig, options: ExportModulesOptions): ModulesManifest['options'] {
  const qformerQuantize = options.qformerQuantize ?? config.runtime.qformerQuantize;
  return {
    visionQuantize: options.visionQuantize ?? config.runtime.visionQuantize,
    llmQuantize: options.llmQuantize ?? config.runtime.llmQuantize,
    ...(qformerQuantize !== 'none' && { qformerQuantize }),
    dtype: options.dtype ?? config.runtime.onnxDtype,
  };
}

/** JSON with sorted object keys, so equal settings hash equally. */
const canonical = (value: unknown): string =>
  JSON.stringify(value, (_, v) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1))) : v));

/** What an export of `fingerprint`'s weights under `config` and `options` is keyed by. 32 hex digits. */
export function modulesKey(fingerprint: string, configInput: PipelineConfigInput | PipelineConfig, options: ExportModulesOptions = {}): string {
  const config = parsePipelineConfig(configInput);
  // Only what the graphs depend on: the name, generation defaults and system prompt do not change an export.
  const shape = { vision: config.vision.vit, frameSelect: config.frameSelect, tokenMerge: config.tokenMerge, spatialSample: config.spatialSample, projector: config.projector, llm: config.llm };
  return createHash('sha256').update(canonical({ fingerprint, exporters: EXPORTERS, shape, options: resolvedOptions(config, options) })).digest('hex').slice(0, 32);
}

/**
 * A model folder's weights as an export must read them, and the fingerprint of that reading: a folder that keeps
 * its LoRA unmerged beside the base weights (as training saves it; `config.lora`) is read with the adapter merged
 * in (`inFolderLoraMergedSource`), and its fingerprint says so, so an export of the bare base weights is never
 * taken for it. `wrap` sits under the merge (the NaN / Infinity check).
 */
export function folderExportSource(dir: string, config: Pick<PipelineConfig, 'lora'>, weightsFile = 'model.safetensors', wrap: (source: WeightSource) => WeightSource = (source) => source): { read: () => WeightSource; fingerprint: string } {
  const lora = config.lora ? loraConfig.parse(config.lora) : undefined;
  const probe = TensorSource.fromDir(dir, weightsFile);
  const adapted = lora !== undefined && probe.keys().some(isLoraKey);
  probe.close();
  return {
    read: () => {
      const source = wrap(TensorSource.fromDir(dir, weightsFile));
      return adapted ? inFolderLoraMergedSource(source, lora) : source;
    },
    fingerprint: `${folderFingerprint(dir, weightsFile)}${adapted ? ':lora-merged' : ''}`,
  };
}

/**
 * A cheap fingerprint of a model folder's weights: for each safetensors file its name, size, mtime and header
 * bytes (keys, dtypes, shapes, offsets), never the tensor data. A rewritten file changes its mtime.
 */
export function folderFingerprint(dir: string, weightsFile = 'model.safetensors'): string {
  const index = join(dir, `${weightsFile}.index.json`);
  const files = existsSync(join(dir, weightsFile))
    ? [weightsFile]
    : existsSync(index)
      ? [...new Set(Object.values((JSON.parse(readFileSync(index, 'utf8')) as { weight_map: Record<string, string> }).weight_map))].sort()
      : [];
  if (files.length === 0) throw new ModulesManifestError(dir, `no ${weightsFile} (or ${weightsFile}.index.json) to fingerprint`);
  const hash = createHash('sha256');
  for (const file of files) {
    const path = join(dir, file);
    const stat = statSync(path);
    hash.update(`${file}\0${stat.size}\0${stat.mtimeMs}\0`);
    const fd = openSync(path, 'r');
    try {
      const length = Buffer.alloc(8);
      readSync(fd, length, 0, 8, 0);
      const header = Buffer.alloc(Math.min(Number(length.readBigUInt64LE(0)), stat.size - 8));
      readSync(fd, header, 0, header.length, 8);
      hash.update(header);
    } finally {
      closeSync(fd);
    }
  }
  return `folder:${hash.digest('hex')}`;
}

/** A fingerprint of a tfjs store's current values (a model trained in memory): every key, shape and value. */
export function storeFingerprint(store: ParameterStore, filter: (key: string) => boolean = () => true): string {
  const hash = createHash('sha256');
  for (const [key, v] of store.entries().filter(([k]) => filter(k)).sort(([a], [b]) => (a < b ? -1 : 1))) {
    hash.update(`${key}:${v.shape.join('x')};`);
    const data = v.dataSync() as Float32Array;
    hash.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  return `store:${hash.digest('hex')}`;
}

/** Reads an export folder's manifest, checking its format. */
export function readModulesManifest(dir: string): ModulesManifest {
  const path = join(dir, MODULES_MANIFEST);
  if (!existsSync(path)) throw new ModulesManifestError(dir, `not an ONNX modules export (no ${MODULES_MANIFEST})`);
  const manifest = JSON.parse(readFileSync(path, 'utf8')) as ModulesManifest;
  if (manifest.format !== MODULES_FORMAT || manifest.formatVersion !== MODULES_FORMAT_VERSION)
    throw new ModulesManifestError(dir, `format ${JSON.stringify(manifest.format)} v${String(manifest.formatVersion)} is not ${MODULES_FORMAT} v${MODULES_FORMAT_VERSION}`);
  return manifest;
}

/** Whether the stage kind has an ONNX exporter; the others run their runtime-neutral implementation. */
export function hasExporter(config: PipelineConfig, module: 'frameSelect' | 'spatialSample'): boolean {
  return module === 'frameSelect' ? config.frameSelect.kind === 'qformer-gumbel' : config.spatialSample.kind === 'qformer';
}

/**
 * Fills `variables` from `source` (keys prefixed by `prefix`) one tensor at a time; a missing or mis-shaped key is a
 * {@link WeightsError} listing every such key.
 */
export function fillFromSource(where: string, variables: Iterable<readonly [string, tf.Variable]>, source: WeightSource, prefix = ''): void {
  const vars = [...variables];
  const missing = vars.filter(([key]) => !source.has(prefix + key)).map(([key]) => prefix + key);
  const misshaped = vars
    .filter(([key]) => source.has(prefix + key))
    .map(([key, v]) => ({ key: prefix + key, expected: v.shape, actual: source.info(prefix + key).shape }))
    .filter((m) => m.expected.length !== m.actual.length || m.expected.some((d, i) => d !== m.actual[i]));
  if (missing.length || misshaped.length) throw new WeightsError(where, missing, [], misshaped);
  for (const [key, v] of vars) {
    const value = tf.tensor(source.read(prefix + key), v.shape, 'float32');
    v.assign(value);
    value.dispose();
  }
}

/** The projector with its weights from `source` (Cq from the spatial stage, D from the LLM config). */
export function projectorFrom(config: PipelineConfig, source: WeightSource, cq: number, cv: number): Projector {
  const llm = config.llm as { hiddenSize: number };
  const projector = withSlot('projector', () => projectorRegistry.create(config.projector, { rng: Rng.fromSeed(0), dims: { Cq: cq, Cv: cv, D: llm.hiddenSize } }));
  fillFromSource('projector', projector.variables(), source);
  return projector;
}

function visionWidth(config: PipelineConfig): number {
  return (config.vision.vit as { hiddenSize: number }).hiddenSize;
}

/** The frame selector's graph spec from the pipeline config (qformer-gumbel only). */
export function frameSelectSpecOf(config: PipelineConfig): FrameSelectSpec {
  return { config: withSlot('frameSelect', () => qformerGumbelConfig.parse(config.frameSelect)), visionWidth: visionWidth(config) };
}

/** The spatial sampler's graph spec (qformer only), with the projector that follows it in the same graph. */
export function spatialSampleSpecOf(config: PipelineConfig): SpatialSampleSpec {
  const kind = config.projector.kind as keyof typeof PROJECTOR_KEYS;
  if (!(kind in PROJECTOR_KEYS)) throw new ConfigError(`projector: unknown kind "${kind}"`, ['projector', 'kind']);
  return {
    config: withSlot('spatialSample', () => qformerSampleConfig.parse(config.spatialSample)),
    visionWidth: visionWidth(config),
    projector: { kind, keys: PROJECTOR_KEYS[kind] as unknown as readonly [string, string] },
  };
}

/**
 * Writes every module of the model `config` describes, reading weights from `source`, into `outDir` (created),
 * and returns the manifest written last (its presence marks a complete export). One module is built and written
 * at a time. Keys are the model folder's: `vision_tower.*`, `vlm_att_*`, the projector's, `model.*` / `lm_head.*`.
 */
export async function exportModules(source: WeightSource, configInput: PipelineConfigInput | PipelineConfig, outDir: string, options: ExportModulesOptions = {}): Promise<ModulesManifest> {
  const config = parsePipelineConfig(configInput);
  const opts = resolvedOptions(config, options);
  const fingerprint = options.fingerprint ?? 'unknown';
  mkdirSync(outDir, { recursive: true });
  const select = hasExporter(config, 'frameSelect');
  const sample = hasExporter(config, 'spatialSample');
  const steps: ModuleName[] = ['vision', ...(select ? (['frameSelect'] as const) : []), ...(sample ? (['spatialSample'] as const) : []), 'llm'];
  const step = (module: ModuleName) => options.onModule?.(module, steps.indexOf(module), steps.length);
  const modules: ModulesManifest['modules'] = { vision: VISION_ONNX_FILE, llm: LLM_MODULE_DIR };

  // Every graph reads its weights lazily: each tensor is read, transformed and written one at a time.
  const dtype = opts.dtype === 'float16' ? ({ dtype: 'float16' } as const) : {};
  const qformer = opts.qformerQuantize && opts.qformerQuantize !== 'none' ? { quantize: opts.qformerQuantize } : {};
  step('vision');
  const vit = withSlot('vision', () => vitConfigSchema.parse(config.vision.vit));
  exportVisionEncoderOnnx(vitWeightsFrom(vit, sourceWeights(source, 'vision_tower.')), join(outDir, VISION_ONNX_FILE), { quantize: opts.visionQuantize, ...dtype });
  if (select) {
    step('frameSelect');
    exportFrameSelectOnnx(frameSelectSpecOf(config), sourceWeights(source), outDir, { ...qformer, ...dtype });
    modules.frameSelect = FRAME_SELECT_ONNX_FILE;
  }
  if (sample) {
    step('spatialSample');
    exportSpatialSampleOnnx(spatialSampleSpecOf(config), sourceWeights(source), join(outDir, SPATIAL_ONNX_FILE), { ...qformer, ...dtype });
    modules.spatialSample = { file: SPATIAL_ONNX_FILE, projector: true };
  }
  step('llm');
  const llm = withSlot('llm', () => parseQwen2Config(config.llm));
  // Generation reads only the last position's logits: the export skips the head everywhere else in a prefill.
  exportQwen2Onnx(llm, sourceWeights(source), join(outDir, LLM_MODULE_DIR), { logitsFor: 'last', ...(opts.llmQuantize !== 'none' && { quantize: opts.llmQuantize }), ...dtype });
  const manifest: ModulesManifest = {
    format: MODULES_FORMAT,
    formatVersion: MODULES_FORMAT_VERSION,
    key: modulesKey(fingerprint, config, options),
    fingerprint,
    exporters: EXPORTERS,
    options: opts,
    modules,
  };
  writeFileSync(join(outDir, MODULES_MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

/**
 * The export folder for `fingerprint`'s weights: `preferred` (a model folder's `onnx/`) when its manifest has the
 * same key, else `<cacheDir>/modules-<key>`, exported there on a miss (atomically: a crash leaves no half export).
 */
export async function exportedModules(
  source: () => WeightSource,
  config: PipelineConfigInput | PipelineConfig,
  cacheDir: string,
  options: ExportModulesOptions & { fingerprint: string; preferred?: string },
): Promise<{ dir: string; manifest: ModulesManifest; exported: boolean }> {
  const key = modulesKey(options.fingerprint, config, options);
  for (const dir of [options.preferred, join(cacheDir, `modules-${key}`)]) {
    if (dir && existsSync(join(dir, MODULES_MANIFEST))) {
      const manifest = readModulesManifest(dir);
      if (manifest.key === key) return { dir, manifest, exported: false };
    }
  }
  let exported = false;
  const dir = await exportCached(cacheDir, `modules-${key}`, async (folder) => {
    const weights = source();
    try {
      await exportModules(weights, config, folder, options);
      exported = true;
    } finally {
      weights.close();
    }
  });
  return { dir, manifest: readModulesManifest(dir), exported };
}
