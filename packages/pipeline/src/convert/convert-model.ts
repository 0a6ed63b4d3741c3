/**
 * Writing a planned conversion as a model folder (issue #18): `bvllm.json`, `model.safetensors` written one
 * tensor at a time (so the paper's 8.8 B parameters convert in the memory of the largest tensor), the LLM
 * tokenizer and the Q-Formers' question tokenizer. Atomic like `saveModel`: a sibling temp folder renamed over
 * `outDir` at the end.
 */
import { copyFileSync, cpSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { dtypeBytes, writeSafetensorsStreamed } from '@bvllm/core';
import { MODULES_DIR, exportModules, folderExportSource } from '../inference/export-modules.js';
import { CONFIG_FILE, QUESTION_TOKENIZER_DIR, WEIGHTS_FILE } from '../model-dir.js';
import type { PipelineConfig, QuantizeSetting } from '../pipeline-config.js';
import type { SourceName } from './conversion-error.js';
import type { ConversionPlan, PlannedWeight } from './plan.js';

export type ConvertDtype = 'f32' | 'f16' | 'bf16';
export type ConvertQuantize = QuantizeSetting;

const STORED = { f32: 'F32', f16: 'F16', bf16: 'BF16' } as const;

export interface ConvertOptions {
  /** Stored dtype of every weight. Default `f32`. */
  dtype?: ConvertDtype;
  /** Quantisation of the decoder's ONNX graph, recorded as `runtime.llmQuantize`. */
  llmQuantize?: ConvertQuantize;
  /** Quantisation of the tower's ONNX graph, recorded as `runtime.visionQuantize`. */
  visionQuantize?: ConvertQuantize;
  /** Quantisation of both Q-Formers' ONNX graphs, recorded as `runtime.qformerQuantize`. */
  qformerQuantize?: ConvertQuantize;
  /**
   * After the weights, export the four ONNX modules into `<outDir>/onnx/` (`exportModules`, with the quantisation
   * above), keyed by the folder's fingerprint, so the first answer opens them instead of exporting. Default false.
   */
  exportOnnx?: boolean;
  /**
   * Weight dtype of the exported graphs (`float16` for the CUDA execution provider; graph inputs and outputs stay
   * float32). Default float32. Recorded as `runtime.onnxDtype`, so a session opens this export as it is.
   */
  onnxDtype?: 'float32' | 'float16';
  /** After each weight is written (`phase` weights: `done` of `total`, its key and stored bytes), and before each ONNX module. */
  onProgress?: (progress: { done: number; total: number; key: string; bytes: number; phase: 'weights' | 'onnx' }) => void;
}

/** What a conversion took from where: per source the weight count and stored bytes, and every random weight. */
export interface ConversionReport {
  outDir: string;
  dtype: ConvertDtype;
  weights: number;
  /** Bytes of `model.safetensors` tensor data. */
  bytes: number;
  bySource: { source: SourceName; dir?: string; weights: number; parameters: number; bytes: number }[];
  random: { key: string; shape: number[]; reason: NonNullable<PlannedWeight['random']> }[];
  /** Source keys not taken (InstructBLIP's LLM, keys unused by the config's kinds). */
  skipped: ConversionPlan['skipped'];
  /** Weights changed on the way (e.g. a resized position table). */
  notes: { key: string; note: string }[];
  onnx: boolean;
}

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

export async function convertModel(plan: ConversionPlan, outDir: string, options: ConvertOptions = {}): Promise<ConversionReport> {
  const dtype = options.dtype ?? 'f32';
  const stored = STORED[dtype];
  const config: PipelineConfig = {
    ...plan.config,
    runtime: {
      ...plan.config.runtime,
      ...(options.llmQuantize && { llmQuantize: options.llmQuantize }),
      ...(options.visionQuantize && { visionQuantize: options.visionQuantize }),
      ...(options.qformerQuantize && { qformerQuantize: options.qformerQuantize }),
      ...(options.onnxDtype && { onnxDtype: options.onnxDtype }),
    },
  };
  const tmp = `${outDir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    writeFileSync(join(tmp, CONFIG_FILE), `${JSON.stringify(config, null, 2)}\n`);
    const total = plan.weights.length;
    const shapes = new Map(plan.weights.map((w) => [w.key, w.shape]));
    writeSafetensorsStreamed(
      join(tmp, WEIGHTS_FILE),
      plan.weights.map((w) => ({ key: w.key, shape: w.shape, dtype: stored, read: () => plan.source.read(w.key) })),
      {
        metadata: { format: 'pt', producer: 'bvllm-ts convert' },
        onTensor: (key, done) => options.onProgress?.({ done, total, key, bytes: numel(shapes.get(key)!) * dtypeBytes[stored], phase: 'weights' }),
      },
    );
    for (const file of ['tokenizer.json', 'tokenizer_config.json']) {
      const from = join(plan.tokenizerDir, file);
      if (existsSync(from)) copyFileSync(from, join(tmp, file));
    }
    cpSync(plan.questionTokenizerDir, join(tmp, QUESTION_TOKENIZER_DIR), { recursive: true });
    mkdirSync(dirname(outDir), { recursive: true });
    const old = `${outDir}.old-${process.pid}`;
    if (existsSync(outDir)) renameSync(outDir, old);
    renameSync(tmp, outDir);
    rmSync(old, { recursive: true, force: true });
  } catch (error) {
    rmSync(tmp, { recursive: true, force: true });
    throw error;
  }
  if (options.exportOnnx) {
    const { read, fingerprint } = folderExportSource(outDir, config, WEIGHTS_FILE);
    const weights = read();
    try {
      await exportModules(weights, config, join(outDir, MODULES_DIR), {
        fingerprint,
        onModule: (module, index, total) => options.onProgress?.({ done: index, total, key: module, bytes: 0, phase: 'onnx' }),
      });
    } finally {
      weights.close();
    }
  }
  return report(plan, outDir, dtype, !!options.exportOnnx);
}

function report(plan: ConversionPlan, outDir: string, dtype: ConvertDtype, onnx: boolean): ConversionReport {
  const width = dtypeBytes[STORED[dtype]];
  const bySource = new Map<SourceName, ConversionReport['bySource'][number]>();
  for (const w of plan.weights) {
    const row = bySource.get(w.source) ?? { source: w.source, dir: w.source === 'random' ? undefined : plan.dirs[w.source], weights: 0, parameters: 0, bytes: 0 };
    row.weights += 1;
    row.parameters += numel(w.shape);
    row.bytes += numel(w.shape) * width;
    bySource.set(w.source, row);
  }
  const rows = [...bySource.values()];
  return {
    outDir,
    dtype,
    weights: plan.weights.length,
    bytes: rows.reduce((a, r) => a + r.bytes, 0),
    bySource: rows,
    random: plan.weights.filter((w) => w.random).map((w) => ({ key: w.key, shape: w.shape, reason: w.random! })),
    skipped: plan.skipped,
    notes: plan.weights.filter((w) => w.note).map((w) => ({ key: w.key, note: w.note! })),
    onnx,
  };
}
