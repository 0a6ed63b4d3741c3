/**
 * LoRA on the Qwen2 projections (spec §2, stage 2: all `nn.Linear` but `lm_head`, r 128, α 256, dropout 0.05):
 * `y = x·Wᵀ + b + s·(dropout(x)·Aᵀ)·Bᵀ` with `s = α / r`, A `[r, in]`, B `[out, r]`, exactly PEFT's plain LoRA.
 * Parameters are named as PEFT saves them, `base_model.model.<base module>.lora_{A,B}.weight`, so an adapter
 * folder round-trips with the Python library (see `lora-peft.ts`).
 */
import { ParameterStore, linear, tf, type Linear, type LinearLike, type Rng } from '@bvllm/core';
import { z } from 'zod';
import { QWEN2_PROJECTIONS, type Qwen2Model, type Qwen2ProjectionName } from './qwen2-model.js';

export const loraConfig = z
  .object({
    /** Rank r (spec §2: 128 in the reference fine-tune). */
    r: z.number().int().positive().default(128),
    /** α; the update is scaled by α / r (spec §2: 256). */
    alpha: z.number().positive().default(256),
    /** Dropout on the adapter's input while training (spec §2: 0.05). */
    dropout: z.number().min(0).lt(1).default(0.05),
    /** Projections to adapt, by HF module name (spec §2: every Linear but `lm_head`). */
    targetModules: z
      .array(z.enum(QWEN2_PROJECTIONS as [Qwen2ProjectionName, ...Qwen2ProjectionName[]]))
      .min(1)
      .default([...QWEN2_PROJECTIONS]),
  })
  .strict();
export type LoraConfig = z.output<typeof loraConfig>;
export type LoraConfigInput = z.input<typeof loraConfig>;

/** Is `key` a LoRA matrix (PEFT's `….lora_A.weight` / `….lora_B.weight`), not a base weight? */
export const isLoraKey = (key: string): boolean => /\.lora_[AB]\.weight$/.test(key);

/** PEFT's key of a LoRA matrix for the base Linear at `prefix` (e.g. `model.layers.0.self_attn.q_proj`). */
export function peftKey(prefix: string, matrix: 'A' | 'B'): string {
  return `base_model.model.${prefix}.lora_${matrix}.weight`;
}

/** One adapted projection; reads the adapter's switches (enabled, merged, training) on every call. */
class LoraLinear implements LinearLike {
  readonly inFeatures: number;
  readonly outFeatures: number;

  constructor(
    readonly base: Linear,
    readonly a: tf.Variable,
    readonly b: tf.Variable,
    private readonly adapter: LoraAdapter,
  ) {
    this.inFeatures = base.inFeatures;
    this.outFeatures = base.outFeatures;
  }

  apply(x: tf.Tensor): tf.Tensor {
    if (!this.adapter.enabled || this.adapter.merged) return this.base.apply(x);
    return tf.tidy(() => {
      const input = this.adapter.training ? this.adapter.dropout(x) : x;
      return tf.add(this.base.apply(x), tf.mul(linear(linear(input, this.a), this.b), this.adapter.scaling));
    });
  }

  /** `B·A` scaled, the change merging makes to `W`. `[out, in]` */
  delta(): tf.Tensor {
    return tf.tidy(() => tf.mul(tf.matMul(this.b, this.a), this.adapter.scaling));
  }
}

/**
 * Adapters attached to a model's projections. While attached, the base parameters are frozen (not trainable),
 * so `variables()` (the adapter matrices) is the whole trainable set the optimizer sees.
 */
export class LoraAdapter {
  readonly store: ParameterStore;
  readonly scaling: number;
  /** Off: the model computes the base output (PEFT's `disable_adapter`). */
  enabled = true;
  /** Training mode: dropout on the adapter input. */
  training = false;
  private isMerged = false;
  private readonly wrapped: { layer: number; name: Qwen2ProjectionName; linear: LoraLinear }[] = [];
  private readonly frozen: tf.Variable[] = [];

  private constructor(
    readonly model: Qwen2Model,
    readonly config: LoraConfig,
    private readonly rng: Rng,
  ) {
    this.scaling = config.alpha / config.r;
    this.store = new ParameterStore('lora', rng);
  }

  /** Wraps every target projection of `model` with a fresh adapter: A as PEFT's kaiming-uniform, B zero. */
  static attach(model: Qwen2Model, config: LoraConfigInput, rng: Rng): LoraAdapter {
    const adapter = new LoraAdapter(model, loraConfig.parse(config), rng);
    model.layers.forEach((block, layer) => {
      for (const name of adapter.config.targetModules) {
        if (block.projections[name] !== block.baseLinears[name]) throw new Error(`${block.prefix} ${name} already carries an adapter`);
        const base = block.baseLinears[name];
        // kaiming_uniform_(a=√5) on [r, in] gives the bound 1/√in, as PEFT's default init.
        const a = adapter.store.create(peftKey(base.prefix, 'A'), [adapter.config.r, base.inFeatures], { kind: 'uniform', bound: 1 / Math.sqrt(base.inFeatures) });
        const b = adapter.store.create(peftKey(base.prefix, 'B'), [base.outFeatures, adapter.config.r], { kind: 'zeros' });
        const linear = new LoraLinear(base, a, b, adapter);
        block.projections[name] = linear;
        adapter.wrapped.push({ layer, name, linear });
      }
    });
    for (const [, v] of model.store.entries())
      if (v.trainable) {
        v.trainable = false;
        adapter.frozen.push(v);
      }
    return adapter;
  }

  get merged(): boolean {
    return this.isMerged;
  }

  /** The adapter matrices by PEFT key: the trainable set. */
  variables(): ReadonlyMap<string, tf.Variable> {
    return this.store.select(() => true);
  }

  /** Folds `s·B·A` into each base weight, so inference runs at base speed. */
  merge(): void {
    if (this.isMerged) return;
    for (const { linear } of this.wrapped) tf.tidy(() => linear.base.weight.assign(tf.add(linear.base.weight, linear.delta())));
    this.isMerged = true;
  }

  /** Takes the merged update back out of the base weights (exact up to float32 rounding). */
  unmerge(): void {
    if (!this.isMerged) return;
    for (const { linear } of this.wrapped) tf.tidy(() => linear.base.weight.assign(tf.sub(linear.base.weight, linear.delta())));
    this.isMerged = false;
  }

  /** Inverted dropout on the adapter input with the adapter's seeded generator. */
  dropout(x: tf.Tensor): tf.Tensor {
    const rate = this.config.dropout;
    if (rate === 0) return x;
    return tf.tidy(() => tf.mul(x, tf.div(tf.cast(tf.greaterEqual(this.rng.uniform(x.shape), rate), 'float32'), 1 - rate)));
  }

  /** Restores the plain model (unmerging first) and frees the adapter. */
  detach(): void {
    this.unmerge();
    for (const { layer, name } of this.wrapped) {
      const block = this.model.layers[layer];
      block.projections[name] = block.baseLinears[name];
    }
    for (const v of this.frozen) v.trainable = true;
    this.wrapped.length = 0;
    this.store.dispose();
  }
}
