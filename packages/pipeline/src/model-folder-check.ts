/**
 * The checks a model folder passes before anything is allocated or read beyond file headers (issue #20 item 4).
 * A folder comes from users, so each hostile case has a typed error with a stable code:
 *
 *   a FIFO, directory or device where a file belongs          CHECKPOINT_FORMAT / SAFETENSORS_FORMAT / TOKENIZER
 *   a config that is not an object, repeats a key, bad fields  CHECKPOINT_FORMAT / CONFIG_INVALID (with the field path)
 *   a weights header that repeats a key                       SAFETENSORS_FORMAT
 *   config shapes the header does not hold (huge sizes)        WEIGHTS_MISMATCH, naming the tensors and config fields
 *   missing or integer weights                                 WEIGHTS_MISMATCH
 *   a corrupt onnx/manifest.json                               CHECKPOINT_FORMAT
 *
 * Non-finite weights need the values, so they are caught as each tensor is read (`finiteSource`), not here.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CheckpointFormatError, ConfigError, TensorSource, TokenizerError, WeightSourceError, WeightsError, configErrorFrom, findDuplicateKey, irregularFile, isFloatDtype } from '@bvllm/core';
import type { ZodTypeAny } from 'zod';
import { generationConfig } from '@bvllm/llm-bridge';
import { tokenMergeRegistry } from '@bvllm/token-merge';
import { samplingOptionsSchema } from '@bvllm/vision-encoder';
import { modelParameterShapes } from './convert/model-shapes.js';
import { PIPELINE_FORMAT, PIPELINE_FORMAT_VERSION, parsePipelineConfig, withSlot, type PipelineConfig } from './pipeline-config.js';

/** File names inside a model folder (`model-dir.ts` re-exports them). */
export const CONFIG_FILE = 'bvllm.json';
export const WEIGHTS_FILE = 'model.safetensors';
export const QUESTION_TOKENIZER_DIR = 'question_tokenizer';
/** The ONNX export `bvllm convert` writes into a folder, and its manifest. */
const ONNX_MANIFEST = join('onnx', 'manifest.json');

/**
 * The one-line notice for weights a folder holds but its config does not use (a stage's `kind` changed to one with
 * fewer or no weights, an ablation): the keys grouped by their first name segment, with counts.
 */
export function unusedWeightsNotice(dir: string, unexpected: readonly string[]): string {
  const groups = new Map<string, number>();
  for (const key of unexpected) {
    const head = key.split('.')[0]!;
    groups.set(head, (groups.get(head) ?? 0) + 1);
  }
  const named = [...groups].map(([head, n]) => (n === 1 && unexpected.includes(head) ? head : `${head}.* (${n})`));
  return `${dir}: skipping ${unexpected.length} weight(s) the config does not use: ${named.join(', ')}`;
}

/** What {@link checkModelFolder} found, for the loader that runs next. */
export interface ModelFolderCheck {
  /** The config as stored (`readModelConfig`). */
  raw: Record<string, unknown>;
  /** The same, validated (every module's fields too). */
  config: PipelineConfig;
  /** Weight keys the folder holds that the config does not use (strict loading refuses them; a session skips them). */
  unexpected: string[];
}

/**
 * Reads a model folder's config, checking it is a regular file holding one JSON object without repeated keys, in
 * our format and a version we read.
 */
export function readModelConfig(dir: string): Record<string, unknown> {
  const path = join(dir, CONFIG_FILE);
  const stat = statSync(path, { throwIfNoEntry: false });
  if (!stat) throw new CheckpointFormatError(dir, `not a B-VLLM model folder (no ${CONFIG_FILE})`);
  const kind = irregularFile(path);
  if (kind) throw new CheckpointFormatError(path, `not a regular file (${kind})`);
  const text = readFileSync(path, 'utf8');
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch (cause) {
    throw new CheckpointFormatError(path, `not valid JSON (${(cause as Error).message})`, { cause });
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config))
    throw new CheckpointFormatError(path, `expected a JSON object, got ${config === null ? 'null' : Array.isArray(config) ? 'an array' : typeof config}`);
  const duplicate = findDuplicateKey(text);
  if (duplicate) throw new CheckpointFormatError(path, `repeats the key ${duplicate.join('.')} (JSON.parse would keep only the last)`);
  const fields = config as Record<string, unknown>;
  if (fields.format !== PIPELINE_FORMAT) throw new CheckpointFormatError(path, `format is ${JSON.stringify(fields.format)}, expected "${PIPELINE_FORMAT}"`);
  if (fields.formatVersion !== PIPELINE_FORMAT_VERSION)
    throw new CheckpointFormatError(path, `format version ${String(fields.formatVersion)} is not supported (this release reads version ${PIPELINE_FORMAT_VERSION})`);
  return fields;
}

/**
 * Validates every part of a config that a session or a model reads later: each module's fields (through the
 * registries and schemas that build them), inference sampling and generation defaults. A bad field is a
 * ConfigError naming its path (`vision.sampling.samplesPerSec: …`), here instead of a raw zod error mid-answer.
 */
export function validateModelConfig(raw: unknown): PipelineConfig {
  const config = parsePipelineConfig(raw);
  modelParameterShapes(config); // parses vision.vit, frameSelect, spatialSample, projector, llm and lora
  withSlot('tokenMerge', () => tokenMergeRegistry.parse(config.tokenMerge));
  parseField(['vision', 'sampling'], samplingOptionsSchema, config.vision.sampling);
  parseField(['generation'], generationConfig, config.generation);
  return config;
}

/** Validates one field of the config; a ConfigError whose message and path start at that field (`generation.foo`). */
function parseField(slot: string[], schema: ZodTypeAny, value: unknown): void {
  const result = schema.safeParse(value);
  if (result.success) return;
  const error = configErrorFrom(slot.join('.'), result.error);
  throw new ConfigError(error.message, [...slot, ...error.path], { cause: result.error });
}

/** Refuses a tokenizer file that is not a regular file (a FIFO would block the read forever). */
function checkTokenizerFiles(dir: string): void {
  const paths = ['tokenizer.json', 'tokenizer_config.json'].map((f) => join(dir, f));
  const questionDir = join(dir, QUESTION_TOKENIZER_DIR);
  if (statSync(questionDir, { throwIfNoEntry: false })?.isDirectory()) paths.push(...readdirSync(questionDir).map((f) => join(questionDir, f)));
  for (const path of paths) {
    const kind = irregularFile(path);
    if (kind) throw new TokenizerError(path, `not a regular file (${kind})`);
  }
}

/** A folder's own ONNX export must have a readable manifest; a corrupt one is refused before the session uses it. */
function checkOnnxManifest(dir: string): void {
  const path = join(dir, ONNX_MANIFEST);
  const stat = statSync(path, { throwIfNoEntry: false });
  if (!stat) return;
  const kind = irregularFile(path);
  if (kind) throw new CheckpointFormatError(path, `not a regular file (${kind})`);
  let manifest: unknown;
  try {
    manifest = JSON.parse(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw new CheckpointFormatError(path, `not valid JSON (${(cause as Error).message}); delete the onnx/ folder to export again`, { cause });
  }
  if (typeof manifest !== 'object' || manifest === null || Array.isArray(manifest))
    throw new CheckpointFormatError(path, 'expected a JSON object; delete the onnx/ folder to export again');
}

/** Numeric config fields equal to `size` (paths like `llm.intermediateSize`), where a mis-shaped tensor's size came from. */
function fieldsOfSize(config: unknown, size: number, path: string[] = []): string[] {
  if (typeof config === 'number') return config === size ? [path.join('.')] : [];
  if (typeof config !== 'object' || config === null || Array.isArray(config)) return [];
  // Only fields that size tensors; generation and runtime settings never do.
  return Object.entries(config).flatMap(([k, v]) => (path.length === 0 && (k === 'generation' || k === 'runtime' || k === 'formatVersion') ? [] : fieldsOfSize(v, size, [...path, k])));
}

/**
 * Checks a model folder from its files' headers alone, before any weight is allocated or read: file kinds, the
 * config (every module), the ONNX manifest, and every weight the config implies against the safetensors header
 * (present, float, same shape). A config that asks for `llm.intermediateSize: 2000000` against a header holding
 * 256 fails here, naming the tensors and that field, instead of allocating gigabytes first.
 */
export function checkModelFolder(dir: string): ModelFolderCheck {
  const raw = readModelConfig(dir);
  const config = validateModelConfig(raw);
  checkTokenizerFiles(dir);
  checkOnnxManifest(dir);
  const expected = modelParameterShapes(config);
  const source = TensorSource.fromDir(dir, WEIGHTS_FILE);
  try {
    const missing: string[] = [];
    const misshaped: { key: string; expected: number[]; actual: number[] }[] = [];
    const notFloat: string[] = [];
    for (const [key, shape] of expected) {
      if (!source.has(key)) {
        missing.push(key);
        continue;
      }
      const info = source.info(key);
      if (!isFloatDtype(info.dtype)) notFloat.push(`${key} (${info.dtype})`);
      if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) misshaped.push({ key, expected: shape, actual: info.shape });
    }
    if (notFloat.length) throw new WeightSourceError(join(dir, WEIGHTS_FILE), 'not-float', notFloat, `weights must be float tensors: ${notFloat.join(', ')}`);
    if (missing.length || misshaped.length) {
      // Keys the config does not use are listed too: a misspelt name shows up as one missing and one unexpected.
      const unexpected = source.keys().filter((k) => !expected.has(k));
      const sizes = new Set(misshaped.flatMap((m) => m.expected.filter((d, i) => d !== m.actual[i])));
      const fields = [...new Set([...sizes].flatMap((size) => fieldsOfSize(raw, size).map((f) => `${f} = ${size}`)))];
      throw new WeightsError(dir, missing, unexpected, misshaped, fields.length ? `the sizes come from ${fields.join(', ')} in ${CONFIG_FILE}` : undefined);
    }
    return { raw, config, unexpected: source.keys().filter((k) => !expected.has(k)) };
  } finally {
    source.close();
  }
}
