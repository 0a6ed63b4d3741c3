/**
 * {@link CausalDecoder} over the tfjs {@link Qwen2Model}: the training model (LoRA adapters included, merged or
 * not) generating through the same interface as the ONNX path. Tensors live only inside each call; the cache
 * handle owns the per-layer keys and values.
 */
import { tf } from '@bvllm/core';
import { positionIdsFromMask, type CausalDecoder, type DecoderCache, type DecoderStepResult, type PrefillInput } from './decoder-runtime.js';
import { disposeKvCache, type KvCache, type Qwen2Model } from './qwen2-model.js';

interface TfjsCache extends DecoderCache {
  kv?: KvCache;
  /** Rotary position of each row's next token: its count of real tokens so far. */
  next: number[];
}

const adapters = new WeakMap<Qwen2Model, TfjsDecoder>();

export class TfjsDecoder implements CausalDecoder {
  readonly runtime = 'tfjs' as const;

  private constructor(readonly model: Qwen2Model) {}

  /** The adapter of `model` (one per model, it holds no state of its own). */
  static of(model: Qwen2Model): TfjsDecoder {
    let adapter = adapters.get(model);
    if (!adapter) adapters.set(model, (adapter = new TfjsDecoder(model)));
    return adapter;
  }

  get hiddenSize(): number {
    return this.model.config.hiddenSize;
  }

  get vocabSize(): number {
    return this.model.config.vocabSize;
  }

  get maxPositions(): number {
    return this.model.config.maxPositionEmbeddings;
  }

  async embed(ids: readonly (readonly number[])[]): Promise<Float32Array> {
    const embeds = this.model.embed(ids.map((row) => [...row]));
    try {
      return (await embeds.data()) as Float32Array;
    } finally {
      embeds.dispose();
    }
  }

  async prefill(input: PrefillInput): Promise<DecoderStepResult> {
    const { batch, length } = input;
    const mask = input.attentionMask;
    const padded = mask?.some((row) => row.some((m) => m === 0)) ?? false;
    const embeds = tf.tensor3d(input.inputsEmbeds, [batch, length, this.hiddenSize]);
    const maskTensor = padded ? tf.tensor2d(mask!.map((r) => [...r]), [batch, length], 'int32') : undefined;
    try {
      const out = this.model.forward({
        inputsEmbeds: embeds,
        attentionMask: maskTensor,
        positionIds: padded ? positionIdsFromMask(mask!, length) : undefined,
        useCache: true,
        logitsFor: 'last',
      });
      const next = mask ? mask.map((row) => row.reduce((a, m) => a + (m ? 1 : 0), 0)) : Array<number>(batch).fill(length);
      return await this.finish(out.logits, { batch, length, kv: out.cache, next });
    } finally {
      tf.dispose([embeds, ...(maskTensor ? [maskTensor] : [])]);
    }
  }

  async step(handle: DecoderCache, tokens: readonly number[]): Promise<DecoderStepResult> {
    const cache = handle as TfjsCache;
    try {
      const embeds = this.model.embed(tokens.map((t) => [t]));
      try {
        const out = this.model.forward({ inputsEmbeds: embeds, cache: cache.kv, positionIds: cache.next.map((p) => [p]), useCache: true, logitsFor: 'last' });
        return await this.finish(out.logits, { batch: cache.batch, length: cache.length + 1, kv: out.cache, next: cache.next.map((p) => p + 1) });
      } finally {
        embeds.dispose();
      }
    } finally {
      disposeKvCache(cache.kv);
    }
  }

  select(handle: DecoderCache, rows: readonly number[]): DecoderCache {
    const cache = handle as TfjsCache;
    const kv = cache.kv!;
    const index = tf.tensor1d([...rows], 'int32');
    try {
      const pick = <T extends tf.Tensor>(t: T) => tf.gather(t, index, 0) as T;
      const kept: TfjsCache = {
        batch: rows.length,
        length: cache.length,
        kv: { keys: kv.keys.map(pick), values: kv.values.map(pick), mask: pick(kv.mask) },
        next: rows.map((r) => cache.next[r]!),
      };
      return kept;
    } finally {
      index.dispose();
      disposeKvCache(kv);
    }
  }

  disposeCache(handle: DecoderCache): void {
    disposeKvCache((handle as TfjsCache).kv);
  }

  /** Reads the `[B, 1, V]` logits into JavaScript, freeing the cache too if that fails. */
  private async finish(logits: tf.Tensor, cache: TfjsCache): Promise<DecoderStepResult> {
    try {
      return { logits: (await logits.data()) as Float32Array, cache };
    } catch (error) {
      disposeKvCache(cache.kv);
      throw error;
    } finally {
      logits.dispose();
    }
  }
}
