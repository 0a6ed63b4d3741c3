/**
 * Qwen2ForCausalLM (HF `modeling_qwen2.py`, mlx-lm `models/qwen2.py`), top to bottom: attention, MLP, block, model.
 * The forward pass takes input embeddings rather than ids, so the projector's visual embeddings can be spliced in
 * between `embed()` and `forward()` (spec §1.2). Symbols: B batch, L new positions, P cached positions, D width,
 * H query heads, Hkv key/value heads, d head width, V vocabulary.
 */
import {
  Linear,
  ParameterStore,
  RMSNorm,
  Rng,
  ShapeError,
  TensorSource,
  WeightsError,
  applyKeyRules,
  linear,
  mapKey,
  applyRotary,
  assertShape,
  attention,
  causalBias,
  mergeHeads,
  paddingBias,
  readHfConfig,
  rotaryTables,
  silu,
  splitHeads,
  tf,
  type Init,
  type LinearLike,
} from '@bvllm/core';
import { headDimOf, parseQwen2Config, qwen2ConfigFromHf, type Qwen2Config, type Qwen2ConfigInput } from './qwen2-config.js';
import { qwen2KeyRules } from './qwen2-keys.js';

/** HF's `initializer_range` for from-scratch weights (Qwen2Config default 0.02). */
const INIT_STD = 0.02;

/**
 * Keys and values of the positions already processed, after rotary, one entry per layer. A cache is immutable:
 * `forward` returns a new one and the caller disposes the old.
 */
export interface KvCache {
  /** Per layer, `[B, Hkv, P, d]`. */
  keys: tf.Tensor4D[];
  /** Per layer, `[B, Hkv, P, d]`. */
  values: tf.Tensor4D[];
  /** 1 for real cached positions, 0 for padding. `[B, P]` */
  mask: tf.Tensor2D;
}

export function disposeKvCache(cache: KvCache | undefined): void {
  if (!cache) return;
  tf.dispose([...cache.keys, ...cache.values, cache.mask]);
}

/** The seven projections of one block, by their HF module name; LoRA swaps entries for wrapped ones. */
export type Qwen2ProjectionName = 'q_proj' | 'k_proj' | 'v_proj' | 'o_proj' | 'gate_proj' | 'up_proj' | 'down_proj';
export const QWEN2_PROJECTIONS: readonly Qwen2ProjectionName[] = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

/** One decoder layer's modules. `projections[name]` is the module at `model.layers.{i}.{self_attn|mlp}.{name}`. */
export class Qwen2Block {
  readonly projections: Record<Qwen2ProjectionName, LinearLike>;
  /** The original Linear of each projection (what a checkpoint loads into), also when LoRA wraps it. */
  readonly baseLinears: Record<Qwen2ProjectionName, Linear>;
  readonly inputNorm: RMSNorm;
  readonly postAttentionNorm: RMSNorm;

  constructor(
    store: ParameterStore,
    readonly prefix: string,
    private readonly config: Qwen2Config,
    init: Init,
  ) {
    const { hiddenSize: dim, intermediateSize: hidden, numHeads, numKvHeads } = config;
    const d = headDimOf(config);
    const attn = `${prefix}.self_attn`;
    const mlp = `${prefix}.mlp`;
    // Qwen2 has biases on q, k, v only (modeling_qwen2.py `Qwen2Attention`).
    this.baseLinears = {
      q_proj: new Linear(store, `${attn}.q_proj`, dim, numHeads * d, { init }),
      k_proj: new Linear(store, `${attn}.k_proj`, dim, numKvHeads * d, { init }),
      v_proj: new Linear(store, `${attn}.v_proj`, dim, numKvHeads * d, { init }),
      o_proj: new Linear(store, `${attn}.o_proj`, numHeads * d, dim, { init, bias: false }),
      gate_proj: new Linear(store, `${mlp}.gate_proj`, dim, hidden, { init, bias: false }),
      up_proj: new Linear(store, `${mlp}.up_proj`, dim, hidden, { init, bias: false }),
      down_proj: new Linear(store, `${mlp}.down_proj`, hidden, dim, { init, bias: false }),
    };
    this.projections = { ...this.baseLinears };
    this.inputNorm = new RMSNorm(store, `${prefix}.input_layernorm`, dim, config.rmsNormEps);
    this.postAttentionNorm = new RMSNorm(store, `${prefix}.post_attention_layernorm`, dim, config.rmsNormEps);
  }

  /**
   * `x [B, L, D]`; `cos`, `sin` `[L, d]`; `bias` broadcasting to `[B, H, L, P+L]`; `past` `[B, Hkv, P, d]` each.
   * Returns the block output `[B, L, D]` and this layer's keys/values over all `P + L` positions. Call inside a
   * `tf.tidy` (the model's forward does): intermediates are left to the caller's scope.
   */
  apply(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor, bias: tf.Tensor, past?: { key: tf.Tensor; value: tf.Tensor }) {
    const p = this.projections;
    const { numHeads, numKvHeads } = this.config;
    const h = this.inputNorm.apply(x);
    const q = applyRotary(splitHeads(p.q_proj.apply(h), numHeads), cos, sin);
    let k = applyRotary(splitHeads(p.k_proj.apply(h), numKvHeads), cos, sin);
    let v: tf.Tensor = splitHeads(p.v_proj.apply(h), numKvHeads);
    if (past) {
      k = tf.concat([past.key, k], 2);
      v = tf.concat([past.value, v], 2);
    }
    // Query head i reads KV head ⌊i / groups⌋ (HF `repeat_kv`). Split and concat rather than core's 5-D tile,
    // because tfjs has no gradient for rank-5 tile and the decoder must train.
    const groups = numHeads / numKvHeads;
    const expand = (t: tf.Tensor) => (groups === 1 ? t : tf.concat(tf.split(t, numKvHeads, 1).flatMap((head) => Array<tf.Tensor>(groups).fill(head)), 1));
    const attended = attention(q, expand(k), expand(v), { bias, scale: 1 / Math.sqrt(headDimOf(this.config)) });
    const afterAttention = tf.add(x, p.o_proj.apply(mergeHeads(attended)));
    const m = this.postAttentionNorm.apply(afterAttention);
    const mlp = p.down_proj.apply(tf.mul(silu(p.gate_proj.apply(m)), p.up_proj.apply(m)));
    return { out: tf.add(afterAttention, mlp), key: k as tf.Tensor4D, value: v as tf.Tensor4D };
  }
}

/** Rotary tables for per-row positions `[B][L]`, shaped `[B, 1, L, d]` to broadcast over the heads. */
function batchRotary(positionIds: readonly (readonly number[])[], headDim: number, theta: number): { cos: tf.Tensor; sin: tf.Tensor } {
  const [b, l] = [positionIds.length, positionIds[0]?.length ?? 0];
  const { cos, sin } = rotaryTables(positionIds.flat(), headDim, theta);
  return { cos: tf.reshape(cos, [b, 1, l, headDim]), sin: tf.reshape(sin, [b, 1, l, headDim]) };
}

/** What {@link Qwen2Model.forward} reads. */
export interface Qwen2ForwardInput {
  /** Token (and spliced visual) embeddings. `[B, L, D]` */
  inputsEmbeds: tf.Tensor;
  /** 1 = real position, 0 = padding (right padding, spec §1.2). int32 or float32 `[B, L]`; all ones if absent. */
  attentionMask?: tf.Tensor;
  /** Positions already processed; the new ones continue at position P. */
  cache?: KvCache;
  /**
   * Rotary position of each new token, `[B][L]`, for left-padded batches (`positionIdsFromMask`); P … P+L−1 for
   * every row when absent.
   */
  positionIds?: readonly (readonly number[])[];
  /** Return the extended cache (generation). Training leaves it off so no per-layer keys outlive the step. */
  useCache?: boolean;
  /** Logits at every position (`all`, training) or only the last one (`last`, generation: saves a [L, V] matmul). */
  logitsFor?: 'all' | 'last';
}

export interface Qwen2ForwardOutput {
  /** `[B, L, V]` (or `[B, 1, V]` for `logitsFor: 'last'`). */
  logits: tf.Tensor3D;
  /** Present when `useCache` was set: covers `P + L` positions. */
  cache?: KvCache;
}

/** A Qwen2 causal LM whose parameters live in one {@link ParameterStore} under the HF checkpoint keys. */
export class Qwen2Model {
  readonly store: ParameterStore;
  readonly embedTokens: tf.Variable;
  readonly layers: Qwen2Block[];
  readonly norm: RMSNorm;
  /** `[V, D]`; the embedding itself when tied. */
  readonly lmHead: tf.Variable;

  /** `init` fills the weight matrices: random for a new model, zeros as cheap placeholders before a load. */
  private constructor(
    readonly config: Qwen2Config,
    rng: Rng,
    init: Init,
  ) {
    this.store = new ParameterStore('qwen2', rng);
    const { vocabSize, hiddenSize } = config;
    this.embedTokens = this.store.create('model.embed_tokens.weight', [vocabSize, hiddenSize], init);
    this.layers = Array.from({ length: config.numLayers }, (_, i) => new Qwen2Block(this.store, `model.layers.${i}`, config, init));
    this.norm = new RMSNorm(this.store, 'model.norm', hiddenSize, config.rmsNormEps);
    this.lmHead = config.tieWordEmbeddings ? this.embedTokens : this.store.create('lm_head.weight', [vocabSize, hiddenSize], init);
  }

  /** A randomly initialised model (HF `_init_weights`: normal(0, 0.02) weights, RMSNorm weights 1). */
  static create(config: Qwen2ConfigInput | Qwen2Config, rng: Rng): Qwen2Model {
    return new Qwen2Model(parseQwen2Config(config), rng, { kind: 'normal', std: INIT_STD });
  }

  /**
   * A model holding `tensors` (HF names, consumed), without drawing random weights first: seeded normal draws
   * in JavaScript take minutes for a 0.5B model. Throws WeightsError listing every key that does not fit.
   */
  static fromTensors(config: Qwen2ConfigInput | Qwen2Config, tensors: ReadonlyMap<string, tf.Tensor>): Qwen2Model {
    const model = new Qwen2Model(parseQwen2Config(config), Rng.fromSeed(0), { kind: 'zeros' });
    try {
      model.loadWeights(tensors);
    } catch (error) {
      model.dispose();
      throw error;
    }
    return model;
  }

  /**
   * Loads a Hugging Face model folder: `config.json` plus `model.safetensors` or its sharded index (F32/F16/BF16).
   * Throws ConfigError for a config we cannot run and WeightsError listing every key that does not fit.
   */
  static load(dir: string): Qwen2Model {
    const model = new Qwen2Model(qwen2ConfigFromHf(readHfConfig(dir)), Rng.fromSeed(0), { kind: 'zeros' });
    const source = TensorSource.fromDir(dir);
    try {
      model.loadFromSource(source);
      return model;
    } catch (error) {
      model.dispose();
      throw error;
    } finally {
      source.close();
    }
  }

  /**
   * Checks every key and shape from the file headers first (one WeightsError lists all problems, nothing is
   * assigned), then reads and assigns one tensor at a time, so loading never holds a second copy of the model.
   */
  private loadFromSource(source: TensorSource): void {
    const rules = qwen2KeyRules(this.config.tieWordEmbeddings);
    const fileKeyOf = new Map<string, string>();
    for (const key of source.keys()) {
      const mapped = mapKey(key, rules);
      if (mapped) fileKeyOf.set(mapped.key, key);
    }
    const missing = this.store.keys().filter((k) => !fileKeyOf.has(k));
    const unexpected = [...fileKeyOf.keys()].filter((k) => !this.store.has(k));
    const misshaped = [...fileKeyOf]
      .filter(([k, file]) => this.store.has(k) && !tf.util.arraysEqual(this.store.get(k).shape, source.info(file).shape))
      .map(([k, file]) => ({ key: k, expected: this.store.get(k).shape, actual: source.info(file).shape }));
    if (missing.length || unexpected.length || misshaped.length) throw new WeightsError(this.store.name, missing, unexpected, misshaped);
    for (const [key, file] of fileKeyOf) {
      const tensor = source.readTensor(file);
      try {
        this.store.load(new Map([[key, tensor]]), { allowMissing: () => true });
      } finally {
        tensor.dispose();
      }
    }
  }

  /** Strict load of HF-named tensors (the key table drops only rotary buffers and a tied head). Consumes `tensors`. */
  loadWeights(tensors: ReadonlyMap<string, tf.Tensor>): void {
    const { tensors: mapped } = applyKeyRules(tensors, qwen2KeyRules(this.config.tieWordEmbeddings));
    try {
      this.store.load(mapped);
    } finally {
      tf.dispose([...mapped.values()]);
    }
  }

  /**
   * Token ids `[B, L]` (int32 tensor or nested arrays) → embeddings `[B, L, D]`. Differentiable with respect to the
   * embedding table through a scatter of the touched rows (tfjs-wasm lacks the segment sum `gather`'s gradient needs).
   */
  embed(ids: tf.Tensor | number[][]): tf.Tensor3D {
    const { vocabSize, hiddenSize } = this.config;
    return tf.tidy(() => {
      const t = Array.isArray(ids) ? tf.tensor2d(ids, undefined, 'int32') : tf.cast(ids, 'int32');
      // The ids as plain numbers: `t` is disposed when this tidy ends, before any backward pass runs.
      const flat = t.dataSync();
      const lookup = tf.customGrad((...inputs: (tf.Tensor | tf.GradSaveFunc)[]) => ({
        value: tf.gather(inputs[0] as tf.Tensor, t),
        gradFunc: (dy: tf.Tensor) => {
          const rows = [...new Set(flat)];
          const slot = new Map(rows.map((id, i) => [id, i]));
          // oneHot's float32 output is wrong on tfjs-wasm 4.22 (it writes int bits); cast the int32 one instead.
          // oneHot refuses a depth of 1 (every id the same), so the columns are cut to the rows after.
          const oneHot = tf.oneHot(tf.tensor1d(Array.from(flat, (id) => slot.get(id)!), 'int32'), Math.max(2, rows.length));
          const assign = tf.slice(tf.cast(oneHot, 'float32'), [0, 0], [-1, rows.length]) as tf.Tensor2D;
          const updates = tf.matMul(assign, tf.reshape(dy, [-1, hiddenSize]) as tf.Tensor2D, true, false);
          return tf.scatterND(tf.tensor2d(rows, [rows.length, 1], 'int32'), updates, [vocabSize, hiddenSize]);
        },
      }));
      return lookup(this.embedTokens) as tf.Tensor3D;
    });
  }

  forward(input: Qwen2ForwardInput): Qwen2ForwardOutput {
    const { inputsEmbeds, cache } = input;
    assertShape('inputsEmbeds', inputsEmbeds, ['B', 'L', this.config.hiddenSize]);
    const [b, l] = inputsEmbeds.shape as [number, number, number];
    if (input.attentionMask) assertShape('attentionMask', input.attentionMask, [b, l]);
    if (cache) assertShape('cache.mask', cache.mask, [b, 'P']);
    const ids = input.positionIds;
    if (ids && (ids.length !== b || ids.some((row) => row.length !== l))) throw new ShapeError('positionIds', [b, l], [ids.length, ids[0]?.length ?? 0]);
    const past = cache ? cache.mask.shape[1] : 0;
    const result = tf.tidy(() => {
      const newMask = input.attentionMask ? tf.cast(input.attentionMask, 'float32') : tf.ones([b, l]);
      const mask = (cache ? tf.concat([tf.cast(cache.mask, 'float32'), newMask], 1) : newMask) as tf.Tensor2D;
      // Right padding keeps every real token at its index, so positions are plain P … P+L−1 (spec §1.2).
      const positions = Array.from({ length: l }, (_, i) => past + i);
      const { cos, sin } = input.positionIds ? batchRotary(input.positionIds, headDimOf(this.config), this.config.ropeTheta) : rotaryTables(positions, headDimOf(this.config), this.config.ropeTheta);
      const bias = tf.add(paddingBias(mask), causalBias(l, past + l));
      let x: tf.Tensor = inputsEmbeds;
      const keys: tf.Tensor4D[] = [];
      const values: tf.Tensor4D[] = [];
      this.layers.forEach((layer, i) => {
        const step = layer.apply(x, cos, sin, bias, cache ? { key: cache.keys[i], value: cache.values[i] } : undefined);
        x = step.out;
        keys.push(step.key);
        values.push(step.value);
      });
      if (input.logitsFor === 'last') x = tf.slice(x, [0, l - 1, 0], [b, 1, -1]);
      const logits = linear(tf.reshape(this.norm.apply(x), [-1, this.config.hiddenSize]), this.lmHead);
      const reshaped = tf.reshape(logits, [b, -1, this.config.vocabSize]) as tf.Tensor3D;
      return input.useCache ? { logits: reshaped, keys, values, mask: tf.cast(mask, 'int32') as tf.Tensor2D } : { logits: reshaped };
    });
    const output: Qwen2ForwardOutput = { logits: result.logits };
    if (result.keys && result.values && result.mask) output.cache = { keys: result.keys, values: result.values, mask: result.mask };
    return output;
  }

  /** Trainable variables by checkpoint key. */
  variables(): ReadonlyMap<string, tf.Variable> {
    return this.store.select((k) => this.store.get(k).trainable);
  }

  dispose(): void {
    this.store.dispose();
  }
}
