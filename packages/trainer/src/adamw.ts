/**
 * AdamW with decoupled weight decay, in the order of PyTorch's `torch.optim.AdamW` (single-tensor path, which the
 * official runs use as `--optim adamw_torch`, spec §2):
 *
 *   p ← p · (1 − lr·λ)                       decay first, on the pre-update value
 *   m ← β1·m + (1 − β1)·g
 *   v ← β2·v + (1 − β2)·g²
 *   p ← p − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + ε)   ε outside the square root
 *
 * Moments live in tf variables under the parameter's key, so a checkpoint stores them as plain named tensors.
 */
import { InvalidArgumentError, tf } from '@bvllm/core';

export interface AdamWOptions {
  /** (β1, β2); PyTorch and HF TrainingArguments default (0.9, 0.999). */
  betas?: readonly [number, number];
  /** ε; PyTorch and HF default 1e-8. */
  eps?: number;
  /** λ; the official runs use 0 (spec §2). */
  weightDecay?: number;
  /** Which keys are decayed; HF's Trainer exempts biases and norm weights. Default: every key. */
  decay?: (key: string) => boolean;
}

/** What a checkpoint stores: the step count and both moments of every parameter, by parameter key. */
export interface AdamWState {
  step: number;
  expAvg: Map<string, tf.Tensor>;
  expAvgSq: Map<string, tf.Tensor>;
}

export class AdamW {
  private readonly betas: readonly [number, number];
  private readonly eps: number;
  private readonly weightDecay: number;
  private readonly decay: (key: string) => boolean;
  private readonly expAvg = new Map<string, tf.Variable>();
  private readonly expAvgSq = new Map<string, tf.Variable>();
  /** Updates taken so far (PyTorch's per-parameter `step`, shared because every parameter steps together). */
  private stepCount = 0;

  constructor(
    readonly params: ReadonlyMap<string, tf.Variable>,
    options: AdamWOptions = {},
  ) {
    this.betas = options.betas ?? [0.9, 0.999];
    this.eps = options.eps ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0;
    this.decay = options.decay ?? (() => true);
    const zeros = (p: tf.Variable) => {
      const initial = tf.zerosLike(p);
      const variable = tf.variable(initial, false);
      initial.dispose();
      return variable;
    };
    for (const [key, p] of params) {
      this.expAvg.set(key, zeros(p));
      this.expAvgSq.set(key, zeros(p));
    }
  }

  get step(): number {
    return this.stepCount;
  }

  /**
   * One update with learning rate `lr`. `grads` holds gradients by parameter key; a parameter without a gradient
   * is left alone (PyTorch skips `p.grad is None`), but the shared step count still advances.
   */
  update(grads: ReadonlyMap<string, tf.Tensor>, lr: number): void {
    for (const key of grads.keys())
      if (!this.params.has(key)) throw new InvalidArgumentError('grads', `gradient for ${key}, which is not an optimized parameter`);
    this.stepCount += 1;
    const [beta1, beta2] = this.betas;
    const t = this.stepCount;
    // Bias corrections in double precision, as PyTorch computes them in Python floats.
    const stepSize = lr / (1 - beta1 ** t);
    const biasCorrection2Sqrt = Math.sqrt(1 - beta2 ** t);
    for (const [key, g] of grads) {
      const p = this.params.get(key)!;
      const m = this.expAvg.get(key)!;
      const v = this.expAvgSq.get(key)!;
      tf.tidy(() => {
        if (this.weightDecay !== 0 && this.decay(key)) p.assign(tf.mul(p, 1 - lr * this.weightDecay));
        m.assign(tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1)));
        v.assign(tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2)));
        const denom = tf.add(tf.div(tf.sqrt(v), biasCorrection2Sqrt), this.eps);
        p.assign(tf.sub(p, tf.mul(tf.div(m, denom), stepSize)));
      });
    }
  }

  /** Copies of the moments (the caller owns them) and the step count. */
  state(): AdamWState {
    const copy = (m: Map<string, tf.Variable>) => new Map([...m].map(([k, v]) => [k, tf.clone(v)] as [string, tf.Tensor]));
    return { step: this.stepCount, expAvg: copy(this.expAvg), expAvgSq: copy(this.expAvgSq) };
  }

  /** Restores a {@link state}; every parameter's moments must be present with its shape. */
  loadState(state: AdamWState): void {
    for (const [name, source, target] of [
      ['expAvg', state.expAvg, this.expAvg],
      ['expAvgSq', state.expAvgSq, this.expAvgSq],
    ] as const) {
      for (const key of source.keys())
        if (!target.has(key)) throw new InvalidArgumentError(`optimizer state ${name}`, `unexpected key ${key}`);
      for (const [key, variable] of target) {
        const t = source.get(key);
        if (!t) throw new InvalidArgumentError(`optimizer state ${name}`, `missing key ${key}`);
        if (!tf.util.arraysEqual(t.shape, variable.shape))
          throw new InvalidArgumentError(`optimizer state ${name}.${key}`, `expected [${variable.shape}], got [${t.shape}]`);
      }
    }
    for (const [key, t] of state.expAvg) this.expAvg.get(key)!.assign(t);
    for (const [key, t] of state.expAvgSq) this.expAvgSq.get(key)!.assign(t);
    this.stepCount = state.step;
  }

  dispose(): void {
    for (const v of [...this.expAvg.values(), ...this.expAvgSq.values()]) v.dispose();
    this.expAvg.clear();
    this.expAvgSq.clear();
  }
}
