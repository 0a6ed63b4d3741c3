/**
 * The decoder as generation sees it, independent of the runtime that executes it (tfjs `Qwen2Model` or an ONNX
 * Runtime session pair). Everything crosses this boundary as plain arrays: generation only ever needs the logits of
 * the last position, and the KV cache stays inside the runtime behind an opaque handle. Symbols: B batch, L new
 * positions, P cached positions, D width, V vocabulary.
 */

/** Which engine runs a module: tfjs (trains, runs everywhere) or onnxruntime-node (the inference fast path). */
export type DecoderRuntimeName = 'tfjs' | 'onnx';

/**
 * A runtime's KV cache over `length` positions (padding included) for `batch` sequences. Opaque; a cache is
 * consumed by the call it is passed to ({@link CausalDecoder.step}, {@link CausalDecoder.select}) or freed by
 * {@link CausalDecoder.disposeCache}.
 */
export interface DecoderCache {
  readonly batch: number;
  readonly length: number;
}

/** What one decoder call leaves: the next-token logits of every sequence and the extended cache. */
export interface DecoderStepResult {
  /** Logits at each sequence's last position, row-major. `[B, V]` */
  logits: Float32Array;
  cache: DecoderCache;
}

/** A prompt batch for {@link CausalDecoder.prefill}. */
export interface PrefillInput {
  /** Embeddings, row-major. `[B, L, D]` */
  inputsEmbeds: Float32Array;
  batch: number;
  length: number;
  /**
   * 1 = real position, 0 = padding, `[B][L]`. Padding must be on the LEFT, so every sequence's last position is
   * real and its logits are the ones generation needs. All ones when absent.
   */
  attentionMask?: readonly (readonly number[])[];
}

export interface CausalDecoder {
  readonly runtime: DecoderRuntimeName;
  /** D */
  readonly hiddenSize: number;
  /** V */
  readonly vocabSize: number;
  /** The longest context the model's rotary table was trained for (`max_position_embeddings`); Infinity if unknown. */
  readonly maxPositions: number;
  /** Token ids `[B][L]` (equal lengths) → embeddings `[B, L, D]`, row-major. */
  embed(ids: readonly (readonly number[])[]): Promise<Float32Array>;
  /** Runs the prompt batch from an empty cache. */
  prefill(input: PrefillInput): Promise<DecoderStepResult>;
  /** Feeds one token per sequence (`tokens.length === cache.batch`); consumes `cache`. */
  step(cache: DecoderCache, tokens: readonly number[]): Promise<DecoderStepResult>;
  /** Keeps only the sequences at `rows` (in that order), so finished ones stop costing compute; consumes `cache`. */
  select(cache: DecoderCache, rows: readonly number[]): DecoderCache;
  disposeCache(cache: DecoderCache): void;
}

/**
 * Rotary positions of a left-padded batch: `cumsum(mask) − 1` per row, padded slots set to 1 (the convention of
 * Hugging Face `generate` and of the transformers.js ONNX decoders), so a padded sequence's real tokens sit at the
 * positions they would have alone. `mask` `[B][P + L]`; returns the last `length` columns, `[B][L]`.
 */
export function positionIdsFromMask(mask: readonly (readonly number[])[], length: number): number[][] {
  return mask.map((row) => {
    let seen = 0;
    const positions = row.map((m) => (m ? seen++ : 1));
    return positions.slice(positions.length - length);
  });
}

/** Left-pads rows of `[B][L_b]` to the longest with `fill`; also returns the matching 1/0 mask. */
export function leftPad(rows: readonly (readonly number[])[], fill = 0): { padded: number[][]; mask: number[][] } {
  const width = Math.max(...rows.map((r) => r.length));
  return {
    padded: rows.map((r) => [...Array<number>(width - r.length).fill(fill), ...r]),
    mask: rows.map((r) => [...Array<number>(width - r.length).fill(0), ...Array<number>(r.length).fill(1)]),
  };
}
