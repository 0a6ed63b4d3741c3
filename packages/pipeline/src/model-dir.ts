/**
 * A B-VLLM model folder: everything needed to run or keep training a model, in formats other tools read.
 *
 *   bvllm.json                 the pipeline config (format + version)
 *   model.safetensors          every parameter under its checkpoint key (LoRA unmerged, PEFT keys)
 *   tokenizer.json             the LLM tokenizer (HF), with tokenizer_config.json (chat template, EOS)
 *   question_tokenizer/        the Q-Formers' BERT tokenizer (vocab.txt or tokenizer.json)
 */
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CheckpointFormatError, QuestionTokenizer, TensorSource, tf, writeSafetensors } from '@bvllm/core';
import { Qwen2Tokenizer } from '@bvllm/llm-bridge';
import { BvllmModel, type BvllmAssets } from './bvllm-model.js';
import { PIPELINE_FORMAT, PIPELINE_FORMAT_VERSION } from './pipeline-config.js';

export const CONFIG_FILE = 'bvllm.json';
export const WEIGHTS_FILE = 'model.safetensors';
export const QUESTION_TOKENIZER_DIR = 'question_tokenizer';

/** Reads a model folder's config, checking it is ours and of a version we read. */
export function readModelConfig(dir: string): Record<string, unknown> {
  const path = join(dir, CONFIG_FILE);
  if (!existsSync(path)) throw new CheckpointFormatError(dir, `not a B-VLLM model folder (no ${CONFIG_FILE})`);
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (cause) {
    throw new CheckpointFormatError(path, `not valid JSON (${(cause as Error).message})`, { cause });
  }
  if (config.format !== PIPELINE_FORMAT) throw new CheckpointFormatError(path, `format is ${JSON.stringify(config.format)}, expected "${PIPELINE_FORMAT}"`);
  if (config.formatVersion !== PIPELINE_FORMAT_VERSION)
    throw new CheckpointFormatError(path, `format version ${String(config.formatVersion)} is not supported (this release reads version ${PIPELINE_FORMAT_VERSION})`);
  return config;
}

/** The tokenizers of a model folder (or of a recipe's assets folder, laid out the same way). */
export function loadAssets(dir: string, questionMaxLength?: number): BvllmAssets {
  return {
    tokenizer: Qwen2Tokenizer.fromDir(dir),
    questionTokenizer: QuestionTokenizer.fromDir(join(dir, QUESTION_TOKENIZER_DIR), { maxLength: questionMaxLength }),
  };
}

/** Loads a model folder: config, tokenizers, then every weight, strictly (a mismatch lists every bad key). */
export function loadModel(dir: string): BvllmModel {
  const config = readModelConfig(dir);
  const model = BvllmModel.create(config, loadAssets(dir, typeof config.questionMaxLength === 'number' ? config.questionMaxLength : undefined));
  const source = TensorSource.fromDir(dir, WEIGHTS_FILE);
  try {
    const tensors = source.readAll();
    try {
      model.store.load(tensors);
    } finally {
      tf.dispose([...tensors.values()]);
    }
  } catch (error) {
    model.dispose();
    throw error;
  } finally {
    source.close();
  }
  return model;
}

/**
 * Writes a model folder atomically: into a sibling temp folder, then renamed over `dir`, so an interrupted save
 * never leaves a half-written model where a working one was. Tokenizer files are copied from `assetsDir`.
 */
export function saveModel(model: BvllmModel, dir: string, assetsDir: string): void {
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  writeFileSync(join(tmp, CONFIG_FILE), `${JSON.stringify(model.config, null, 2)}\n`);
  const weights = model.store.snapshot();
  try {
    writeSafetensors(join(tmp, WEIGHTS_FILE), weights, { metadata: { format: 'pt', producer: 'bvllm-ts' } });
  } finally {
    tf.dispose([...weights.values()]);
  }
  for (const file of ['tokenizer.json', 'tokenizer_config.json']) if (existsSync(join(assetsDir, file))) copyFileSync(join(assetsDir, file), join(tmp, file));
  cpSync(join(assetsDir, QUESTION_TOKENIZER_DIR), join(tmp, QUESTION_TOKENIZER_DIR), { recursive: true });
  for (const extra of ['MODEL_CARD.md', 'README.md']) if (existsSync(join(dir, extra))) copyFileSync(join(dir, extra), join(tmp, extra));
  mkdirSync(dirname(dir), { recursive: true });
  const old = `${dir}.old-${process.pid}`;
  if (existsSync(dir)) renameSync(dir, old);
  renameSync(tmp, dir);
  rmSync(old, { recursive: true, force: true });
}
