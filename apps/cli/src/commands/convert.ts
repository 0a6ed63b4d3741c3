import { readFileSync } from 'node:fs';
import { ConfigError, initBackend } from '@bvllm/core';
import { convertModel, planConversion, quantizeSetting, type ConversionReport, type ConvertDtype, type ConvertQuantize } from '@bvllm/pipeline';
import { InvalidArgumentError as FlagError, type Command } from 'commander';
import type { CliOutput } from '../run-cli.js';
import { nonNegativeInt } from '../flags.js';

const QUANTIZE_CHOICES = quantizeSetting.options;

function oneOf<T extends string>(values: readonly T[]): (value: string) => T {
  return (value) => {
    if (!(values as readonly string[]).includes(value)) throw new FlagError(`expected ${values.join(' or ')}`);
    return value as T;
  };
}

interface ConvertFlags {
  config: string;
  out: string;
  instructblip?: string;
  vision?: string;
  qwen2?: string;
  bvllm?: string;
  lora?: string;
  dtype: ConvertDtype;
  llmQuantize?: ConvertQuantize;
  visionQuantize?: ConvertQuantize;
  qformerQuantize?: ConvertQuantize;
  allowRandom: string[];
  seed: number;
  onnx: boolean;
  onnxDtype: 'f32' | 'f16';
}

function readConfig(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new ConfigError(`--config ${path}: ${(cause as Error).message}`, ['config'], { cause });
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new ConfigError(`--config ${path}: not valid JSON (${(cause as Error).message})`, ['config'], { cause });
  }
}

export function registerConvert(program: Command, output: CliOutput): void {
  program
    .command('convert')
    .description('build a model folder (bvllm.json, weights, tokenizers, ONNX modules) from InstructBLIP + Qwen2 checkpoints, a LoRA adapter or a B-VLLM folder')
    .requiredOption('--config <file>', 'pipeline config JSON (e.g. packages/pipeline/configs/bvllm-official.json); the checkpoints fix the widths')
    .requiredOption('--out <dir>', 'the model folder to write')
    .option('--instructblip <dir>', 'an InstructBlipForConditionalGeneration folder: the vision tower, both Q-Formers and query sets')
    .option('--vision <dir>', "a CLIP, SigLIP or InstructBLIP vision folder for the tower (and the temporal LayerNorm) instead of InstructBLIP's")
    .option('--qwen2 <dir>', 'a Qwen2ForCausalLM folder: the LLM and its tokenizer')
    .option('--bvllm <dir>', 'a B-VLLM model folder whose weights take precedence')
    .option('--lora <dir>', 'a PEFT LoRA adapter folder, merged into the Qwen2 weights')
    .option('--dtype <dtype>', 'stored weight dtype: f32, f16 or bf16', oneOf(['f32', 'f16', 'bf16'] as const), 'f32')
    .option('--llm-quantize <q>', 'quantisation of the decoder graph: int8 or int4 (weight-only blocks), dynamic-int8 (int8 GEMM)', oneOf(QUANTIZE_CHOICES))
    .option('--vision-quantize <q>', 'quantisation of the tower graph: dynamic-int8 (int8 GEMM, fastest on CPU), int8 or int4', oneOf(QUANTIZE_CHOICES))
    .option('--qformer-quantize <q>', 'quantisation of both Q-Former graphs: dynamic-int8, int8 or int4', oneOf(QUANTIZE_CHOICES))
    .option('--allow-random <name>', 'let this weight (a key or key prefix) start random when no source holds it; repeatable', (v: string, all: string[]) => [...all, v], [])
    .option('--seed <n>', 'seed of the random fills', nonNegativeInt, 0)
    .option('--onnx-dtype <dtype>', 'weight dtype of the exported ONNX graphs: f32, or f16 for the CUDA execution provider', oneOf(['f32', 'f16'] as const), 'f32')
    .option('--no-onnx', 'skip exporting the ONNX modules (the first answer then exports them into the cache)')
    .action(async (flags: ConvertFlags) => {
      await initBackend();
      const plan = planConversion(readConfig(flags.config), {
        instructblip: flags.instructblip,
        vision: flags.vision,
        qwen2: flags.qwen2,
        bvllm: flags.bvllm,
        lora: flags.lora,
        allowRandom: flags.allowRandom,
        seed: flags.seed,
      });
      try {
        const bar = progressBar(output);
        const report = await convertModel(plan, flags.out, {
          dtype: flags.dtype,
          llmQuantize: flags.llmQuantize,
          visionQuantize: flags.visionQuantize,
          qformerQuantize: flags.qformerQuantize,
          exportOnnx: flags.onnx,
          onnxDtype: flags.onnxDtype === 'f16' ? 'float16' : 'float32',
          onProgress: (p) => (p.phase === 'weights' ? bar('weights', p.done, p.total, p.bytes) : bar(`onnx ${p.key}`, p.done + 1, p.total, 0)),
        });
        output.out(reportTable(report));
      } finally {
        plan.close();
      }
    });
}

/** Bytes in the largest binary unit that keeps the number at or above 1. */
function size(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (bytes >= 1024 * 2 ** (10 * i) && i < units.length - 1) i++;
  return i === 0 ? `${bytes} B` : `${(bytes / 2 ** (10 * i)).toFixed(1)} ${units[i]}`;
}

/** Table rows in source priority order, random fills last. */
const SOURCE_ORDER = ['bvllm', 'vision', 'instructblip', 'qwen2', 'random'];

/**
 * A progress bar on stderr. On a terminal it is one line rewritten in place; otherwise (a log, CI) one plain line
 * per tenth of the work, so a log shows progress without thousands of lines.
 */
function progressBar(output: CliOutput): (label: string, done: number, total: number, bytes: number) => void {
  const tty = process.stderr.isTTY;
  let written = 0;
  let lastTenth = -1;
  let lastLabel = '';
  return (label, done, total, bytes) => {
    if (label !== lastLabel) {
      written = 0;
      lastTenth = -1;
      lastLabel = label;
    }
    written += bytes;
    const line = `${label} ${done}/${total}${written ? ` ${size(written)}` : ''}`;
    if (tty) {
      const width = 30;
      const filled = Math.round((done / Math.max(total, 1)) * width);
      output.err(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${line}\x1b[K${done === total ? '\n' : ''}`);
      return;
    }
    const tenth = Math.floor((done / Math.max(total, 1)) * 10);
    if (tenth !== lastTenth) {
      lastTenth = tenth;
      output.err(`${line}\n`);
    }
  };
}

/** What the folder took from where: weights, parameters and bytes per source, then every random weight by name. */
function reportTable(report: ConversionReport): string {
  const rows = [['source', 'weights', 'parameters', 'stored', 'from'], ...[...report.bySource].sort((a, b) => SOURCE_ORDER.indexOf(a.source) - SOURCE_ORDER.indexOf(b.source)).map((r) => [r.source, String(r.weights), r.parameters.toLocaleString('en-US'), size(r.bytes), r.dir ?? ''])];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const lines = rows.map((r) => r.map((c, i) => (i === 0 || i === 4 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd());
  lines.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  const out = [`${report.outDir}: ${report.weights} weights, ${size(report.bytes)} (${report.dtype})${report.onnx ? ', ONNX modules in onnx/' : ''}`, ...lines];
  if (report.random.length) {
    out.push('', 'random weights:');
    for (const r of report.random) out.push(`  ${r.key} [${r.shape.join(', ')}] (${r.reason === 'official-init' ? 'random in the official init' : '--allow-random'})`);
  }
  for (const n of report.notes) out.push(`note: ${n.key}: ${n.note}`);
  if (report.skipped.length) {
    const bySource = new Map<string, number>();
    for (const s of report.skipped) bySource.set(s.source, (bySource.get(s.source) ?? 0) + 1);
    out.push(`skipped source keys: ${[...bySource].map(([s, n]) => `${s} ${n}`).join(', ')} (not used by this model)`);
  }
  return `${out.join('\n')}\n`;
}
