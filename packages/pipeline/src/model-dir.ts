/**
 * A B-VLLM model folder: everything needed to run or keep training a model, in formats other tools read.
 *
 *   bvllm.json                 the pipeline config (format + version)
 *   model.safetensors          every parameter under its checkpoint key (LoRA unmerged, PEFT keys)
 *   tokenizer.json             the LLM tokenizer (HF), with tokenizer_config.json (chat template, EOS)
 *   question_tokenizer/        the Q-Formers' BERT tokenizer (vocab.txt or tokenizer.json)
 */
import { copyFileSync, cpSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { QuestionTokenizer, TensorSource, checkFinite, tf, writeSafetensors, type FiniteCheckOptions } from '@bvllm/core';
import { Qwen2Tokenizer } from '@bvllm/llm-bridge';
import { BvllmModel, type BvllmAssets } from './bvllm-model.js';
import { CONFIG_FILE, QUESTION_TOKENIZER_DIR, WEIGHTS_FILE, checkModelFolder, unusedWeightsNotice } from './model-folder-check.js';

export { CONFIG_FILE, QUESTION_TOKENIZER_DIR, WEIGHTS_FILE, readModelConfig } from './model-folder-check.js';

/** The tokenizers of a model folder (or of a recipe's assets folder, laid out the same way). */
export function loadAssets(dir: string, questionMaxLength?: number): BvllmAssets {
  return {
    tokenizer: Qwen2Tokenizer.fromDir(dir),
    questionTokenizer: QuestionTokenizer.fromDir(join(dir, QUESTION_TOKENIZER_DIR), { maxLength: questionMaxLength }),
  };
}

/** How {@link loadModel} treats a folder. */
export interface LoadModelOptions extends FiniteCheckOptions {}

/**
 * Loads a model folder: the folder is checked from its headers first (`checkModelFolder`: file kinds, every config
 * field, every weight's name, dtype and shape, so a hostile config fails before the model is allocated), then the
 * tokenizers, then every weight the config uses. Weights it does not use (a stage switched to a kind with fewer
 * weights) are skipped with one notice through `onWarning`. Each weight is checked for NaN / Infinity as it is read
 * (`nonFinite: 'warn'` only reports them).
 */
/** A library notice: the caller's `onWarning`, else a process warning. */
export function warn(options: FiniteCheckOptions, message: string): void {
  (options.onWarning ?? ((m: string) => process.emitWarning(m)))(message);
}

export function loadModel(dir: string, options: LoadModelOptions = {}): BvllmModel {
  const { raw, unexpected } = checkModelFolder(dir);
  if (unexpected.length) warn(options, unusedWeightsNotice(dir, unexpected));
  const unused = new Set(unexpected);
  const model = BvllmModel.create(raw, loadAssets(dir, typeof raw.questionMaxLength === 'number' ? raw.questionMaxLength : undefined));
  const source = TensorSource.fromDir(dir, WEIGHTS_FILE);
  try {
    const tensors = new Map<string, tf.Tensor>();
    try {
      for (const key of source.keys()) {
        if (unused.has(key)) continue;
        const info = source.info(key);
        const values = source.read(key);
        checkFinite(source.origin(key), key, values, options);
        tensors.set(key, tf.tensor(values, info.shape, 'float32'));
      }
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
