/**
 * {@link CausalDecoder} on onnxruntime-node, reading a Qwen2 export in the layout transformers.js and optimum use
 * for vision-language decoders: `embed_tokens.onnx` (ids → embeddings, so visual embeddings can be spliced in
 * between) and `decoder_model_merged.onnx` (embeddings, mask, positions and per-layer past → logits and present),
 * optionally with the model's `config.json`. A user's existing export of a Qwen2 model loads through the same path
 * as ours. The two sessions are created once per load and reused for every call.
 *
 * Sessions come from `@bvllm/onnx` (CPU by default, CUDA when asked for and installed; failures are an
 * OrtSessionError naming the file).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, ShapeError } from '@bvllm/core';
import { createSession, ort, runSession, type SessionOptions, type OrtSession } from '@bvllm/onnx';
import { positionIdsFromMask, type CausalDecoder, type DecoderCache, type DecoderStepResult, type PrefillInput } from '../decoder-runtime.js';

export const ORT_EMBED_FILE = 'embed_tokens.onnx';
export const ORT_DECODER_FILE = 'decoder_model_merged.onnx';

/** Threads (default: every core) and execution providers (default CPU; `['cuda', 'cpu']` with the CUDA build). */
export interface OrtDecoderOptions extends SessionOptions {
  /**
   * Prompt positions per prefill call. The layout returns logits at every position (`[B, L, V]`), so a long prompt
   * batch is fed in chunks through the cache to bound that output; default: as many as keep it under 256 MiB, or the
   * whole prompt for an export declaring last-position logits (`[B, 1, V]`).
   */
  prefillChunk?: number;
}

/** The most logits bytes one prefill call may return when `prefillChunk` is not given. */
const PREFILL_LOGITS_BYTES = 256 * 2 ** 20;

interface OrtCache extends DecoderCache {
  /** Per past input name, `[B, Hkv, P, d]`. */
  past: Map<string, ort.Tensor>;
  /** Mask over every cached position. `[B][P]` */
  mask: number[][];
}

const PAST_KEY = /^past_key_values\.(\d+)\.(key|value)$/;

export class OrtDecoder implements CausalDecoder {
  readonly runtime = 'onnx' as const;

  private constructor(
    readonly dir: string,
    private readonly embedSession: OrtSession,
    private readonly decoderSession: OrtSession,
    readonly hiddenSize: number,
    readonly vocabSize: number,
    readonly maxPositions: number,
    /** The `config.json` EOS ids, if the folder has one. */
    readonly eosTokenIds: readonly number[],
    /** Past input names with their declared shapes (`dim_param` strings or fixed sizes). */
    private readonly pastInputs: readonly { name: string; shape: readonly (number | string)[] }[],
    private readonly prefillChunk?: number,
  ) {}

  /** True when `dir` holds both graphs. */
  static exists(dir: string): boolean {
    return existsSync(join(dir, ORT_EMBED_FILE)) && existsSync(join(dir, ORT_DECODER_FILE));
  }

  /**
   * Opens both graphs of `dir`. Throws ConfigError when a file is missing or the decoder lacks an input or output
   * this interface needs (naming it).
   */
  static async load(dir: string, options: OrtDecoderOptions = {}): Promise<OrtDecoder> {
    for (const file of [ORT_EMBED_FILE, ORT_DECODER_FILE])
      if (!existsSync(join(dir, file))) throw new ConfigError(`ONNX decoder folder ${dir} has no ${file}`, ['onnx', file]);
    const embed = await createSession(join(dir, ORT_EMBED_FILE), options);
    const decoder = await createSession(join(dir, ORT_DECODER_FILE), options).catch(async (error: unknown) => {
      await embed.release();
      throw error;
    });
    try {
      const tensorMeta = (list: readonly ort.InferenceSession.ValueMetadata[], name: string, file: string) => {
        const meta = list.find((m) => m.name === name);
        if (!meta?.isTensor) throw new ConfigError(`${file} in ${dir} has no tensor ${JSON.stringify(name)}`, ['onnx', file, name]);
        return meta;
      };
      for (const name of ['inputs_embeds', 'attention_mask', 'position_ids']) tensorMeta(decoder.inputMetadata, name, ORT_DECODER_FILE);
      const pastInputs = decoder.inputMetadata.flatMap((m) => (m.isTensor && PAST_KEY.test(m.name) ? [{ name: m.name, shape: m.shape }] : []));
      for (const { name } of pastInputs) tensorMeta(decoder.outputMetadata, name.replace('past_key_values', 'present'), ORT_DECODER_FILE);
      const config = readOptionalConfig(dir);
      const hiddenSize = fixedDim(tensorMeta(embed.outputMetadata, 'inputs_embeds', ORT_EMBED_FILE).shape, -1) ?? config.hidden_size;
      const logitsShape = tensorMeta(decoder.outputMetadata, 'logits', ORT_DECODER_FILE).shape;
      const vocabSize = fixedDim(logitsShape, -1) ?? config.vocab_size;
      // An export that returns only the last position's logits (`[B, 1, V]`) needs no chunking.
      const prefillChunk = options.prefillChunk ?? (fixedDim(logitsShape, 1) === 1 ? Infinity : undefined);
      if (typeof hiddenSize !== 'number' || typeof vocabSize !== 'number')
        throw new ConfigError(`${dir}: hidden size and vocabulary are neither fixed in the graphs nor in config.json`, ['onnx']);
      const eos = config.eos_token_id;
      return new OrtDecoder(
        dir,
        embed,
        decoder,
        hiddenSize,
        vocabSize,
        typeof config.max_position_embeddings === 'number' ? config.max_position_embeddings : Infinity,
        Array.isArray(eos) ? eos.filter((e): e is number => typeof e === 'number') : typeof eos === 'number' ? [eos] : [],
        pastInputs,
        prefillChunk,
      );
    } catch (error) {
      await Promise.all([embed.release(), decoder.release()]);
      throw error;
    }
  }

  /** Number of decoder layers (past key/value pairs). */
  get numLayers(): number {
    return this.pastInputs.length / 2;
  }

  async embed(ids: readonly (readonly number[])[]): Promise<Float32Array> {
    const length = ids[0]?.length ?? 0;
    if (ids.some((row) => row.length !== length)) throw new ShapeError('input_ids', [ids.length, length], [ids.length, Math.max(...ids.map((r) => r.length))], 'rows must have equal lengths');
    const input = new ort.Tensor('int64', BigInt64Array.from(ids.flat(), BigInt), [ids.length, length]);
    const { inputs_embeds: out } = await runSession(this.embedSession, { input_ids: input }, join(this.dir, ORT_EMBED_FILE));
    return out!.data as Float32Array;
  }

  async prefill(input: PrefillInput): Promise<DecoderStepResult> {
    const { batch, length } = input;
    if (input.inputsEmbeds.length !== batch * length * this.hiddenSize)
      throw new ShapeError('inputsEmbeds', [batch, length, this.hiddenSize], [input.inputsEmbeds.length / this.hiddenSize / length, length, this.hiddenSize]);
    const mask = input.attentionMask?.map((r) => [...r]) ?? Array.from({ length: batch }, () => Array<number>(length).fill(1));
    const chunk = this.prefillChunk ?? Math.max(1, Math.floor(PREFILL_LOGITS_BYTES / (4 * batch * this.vocabSize)));
    let cache: OrtCache = { batch, length: 0, past: new Map(this.pastInputs.map(({ name, shape }) => [name, emptyPast(shape, batch)])), mask: [] };
    for (let start = 0; ; start += chunk) {
      const end = Math.min(length, start + chunk);
      const embeds = end - start === length ? input.inputsEmbeds : columns(input.inputsEmbeds, batch, length, this.hiddenSize, start, end);
      const result = await this.run(cache, embeds, end - start, mask.map((row) => row.slice(0, end)));
      if (end === length) return result;
      cache = result.cache as OrtCache;
    }
  }

  async step(handle: DecoderCache, tokens: readonly number[]): Promise<DecoderStepResult> {
    const cache = handle as OrtCache;
    if (tokens.length !== cache.batch) throw new ShapeError('tokens', [cache.batch], [tokens.length]);
    const embeds = await this.embed(tokens.map((t) => [t]));
    return this.run(cache, embeds, 1, cache.mask.map((row) => [...row, 1]));
  }

  select(handle: DecoderCache, rows: readonly number[]): DecoderCache {
    const cache = handle as OrtCache;
    const past = new Map<string, ort.Tensor>();
    for (const [name, tensor] of cache.past) {
      const [b, ...rest] = tensor.dims as number[];
      const rowSize = rest.reduce((a, n) => a * n, 1);
      const data = tensor.data as Float32Array;
      const kept = new Float32Array(rows.length * rowSize);
      rows.forEach((r, i) => {
        if (r < 0 || r >= b!) throw new ShapeError('rows', [b!], [r], 'row index out of range');
        kept.set(data.subarray(r * rowSize, (r + 1) * rowSize), i * rowSize);
      });
      past.set(name, new ort.Tensor('float32', kept, [rows.length, ...rest]));
    }
    this.disposeCache(cache);
    const kept: OrtCache = { batch: rows.length, length: cache.length, past, mask: rows.map((r) => cache.mask[r]!) };
    return kept;
  }

  disposeCache(handle: DecoderCache): void {
    for (const tensor of (handle as OrtCache).past.values()) tensor.dispose();
    (handle as OrtCache).past.clear();
  }

  /** Releases both sessions; the decoder cannot be used afterwards. */
  async release(): Promise<void> {
    await Promise.all([this.embedSession.release(), this.decoderSession.release()]);
  }

  /**
   * One decoder call over `length` new positions of `embeds` `[B, L, D]` after `cache`; `mask` covers past and
   * new positions. Consumes `cache`; returns the logits at each row's last position and `present` renamed to past.
   */
  private async run(cache: OrtCache, embeds: Float32Array, length: number, mask: number[][]): Promise<DecoderStepResult> {
    const { batch } = cache;
    const width = cache.length + length;
    const feeds: Record<string, ort.Tensor> = {
      inputs_embeds: new ort.Tensor('float32', embeds, [batch, length, this.hiddenSize]),
      attention_mask: new ort.Tensor('int64', BigInt64Array.from(mask.flat(), BigInt), [batch, width]),
      position_ids: new ort.Tensor('int64', BigInt64Array.from(positionIdsFromMask(mask, length).flat(), BigInt), [batch, length]),
    };
    for (const [name, tensor] of cache.past) feeds[name] = tensor;
    let outputs: Record<string, ort.Tensor>;
    try {
      // The past is consumed and the mask and positions are this call's own, so they move to a worker session
      // instead of being copied (the past is the whole KV cache, at every token).
      outputs = await runSession(this.decoderSession, feeds, join(this.dir, ORT_DECODER_FILE), ['attention_mask', 'position_ids', ...cache.past.keys()]);
    } finally {
      this.disposeCache(cache);
    }
    const logits = outputs.logits!;
    const past = new Map(this.pastInputs.map(({ name }) => [name, outputs[name.replace('past_key_values', 'present')]!]));
    const cacheOut: OrtCache = { batch, length: width, past, mask };
    return { logits: lastPosition(logits, this.vocabSize), cache: cacheOut };
  }
}

/** A zero-length past from the declared shape: `batch_size` is the batch, every other symbol 0 (fixture README). */
function emptyPast(shape: readonly (number | string)[], batch: number): ort.Tensor {
  const dims = shape.map((d) => (typeof d === 'number' ? d : d === 'batch_size' ? batch : 0));
  return new ort.Tensor('float32', new Float32Array(0), dims);
}

/** Positions `start … end−1` of every row of `values` `[B, L, D]`, as `[B, end − start, D]`. */
function columns(values: Float32Array, batch: number, length: number, d: number, start: number, end: number): Float32Array {
  const out = new Float32Array(batch * (end - start) * d);
  for (let b = 0; b < batch; b++) out.set(values.subarray((b * length + start) * d, (b * length + end) * d), b * (end - start) * d);
  return out;
}

/** The logits `[B, L, V]` at the last position of each row, `[B, V]`. */
function lastPosition(logits: ort.Tensor, vocab: number): Float32Array {
  const [b, l] = logits.dims as [number, number, number];
  const data = logits.data as Float32Array;
  if (l === 1) return data;
  const out = new Float32Array(b * vocab);
  for (let i = 0; i < b; i++) out.set(data.subarray((i * l + l - 1) * vocab, (i * l + l) * vocab), i * vocab);
  logits.dispose();
  return out;
}

function fixedDim(shape: readonly (number | string)[], axis: number): number | undefined {
  const d = shape.at(axis);
  return typeof d === 'number' && d > 0 ? d : undefined;
}

/** The folder's HF `config.json` fields we read, or nothing: a bare transformers.js export is enough to run. */
function readOptionalConfig(dir: string): Record<string, unknown> {
  const path = join(dir, 'config.json');
  if (!existsSync(path)) return {};
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (cause) {
    throw new ConfigError(`${path} is not valid JSON (${(cause as Error).message})`, ['onnx', 'config.json'], { cause });
  }
}
