import * as tf from '@tensorflow/tfjs-core';
import { WeightsError } from './errors.js';
import type { Rng } from './random.js';

/** How a new parameter starts before weights are loaded. */
export type Init = { kind: 'zeros' } | { kind: 'ones' } | { kind: 'normal'; std: number } | { kind: 'uniform'; bound: number };

/**
 * The parameters of a model under their checkpoint keys (Hugging Face names for ported models), so loading a
 * checkpoint is a strict key-for-key copy and a trainable set is a key filter. Variables are created once and
 * updated in place by optimizers and loads.
 */
export class ParameterStore {
  private readonly params = new Map<string, tf.Variable>();

  constructor(
    readonly name: string,
    private readonly rng: Rng,
  ) {}

  /** Creates `key` with `shape`; throws if the key exists, since two modules writing one key is a wiring bug. */
  create(key: string, shape: number[], init: Init, trainable = true): tf.Variable {
    if (this.params.has(key)) throw new Error(`${this.name}: parameter ${key} created twice`);
    const size = shape.reduce((a, b) => a * b, 1);
    const initial = tf.tidy(() => {
      switch (init.kind) {
        case 'zeros':
          return tf.zeros(shape);
        case 'ones':
          return tf.ones(shape);
        case 'normal':
          return this.rng.normal(shape, init.std);
        case 'uniform':
          return tf.tensor(this.rng.uniformArray(size).map((u) => (2 * u - 1) * init.bound), shape);
      }
    });
    const variable = tf.variable(initial, trainable, `${this.name}/${key}/${tf.util.now().toString(36)}${this.params.size}`);
    initial.dispose();
    this.params.set(key, variable);
    return variable;
  }

  /**
   * Registers a variable another store created, under `key`, so a model assembled from stages (each with its own
   * store) exposes one store to an optimizer and a checkpoint. The owning stage still disposes it.
   */
  adopt(key: string, variable: tf.Variable): void {
    if (this.params.has(key)) throw new Error(`${this.name}: parameter ${key} adopted twice (two stages share a key?)`);
    this.params.set(key, variable);
  }

  get(key: string): tf.Variable {
    const v = this.params.get(key);
    if (!v) throw new Error(`${this.name}: no parameter ${key}`);
    return v;
  }

  has(key: string): boolean {
    return this.params.has(key);
  }

  keys(): string[] {
    return [...this.params.keys()];
  }

  entries(): [string, tf.Variable][] {
    return [...this.params.entries()];
  }

  /** Parameters whose key passes `filter`, for an optimizer's trainable set. */
  select(filter: (key: string) => boolean): Map<string, tf.Variable> {
    return new Map([...this.params].filter(([k]) => filter(k)));
  }

  /** Total number of scalars, optionally of the keys passing `filter`. */
  count(filter: (key: string) => boolean = () => true): number {
    let n = 0;
    for (const [k, v] of this.params) if (filter(k)) n += v.size;
    return n;
  }

  /**
   * Copies `tensors` into the parameters. Strict by default: one {@link WeightsError} lists every missing,
   * unexpected and mis-shaped key before anything is assigned, so a bad checkpoint never half-loads.
   * `allowMissing` lets a partial checkpoint (an adapter, one stage) load onto fresh parameters.
   */
  load(tensors: ReadonlyMap<string, tf.Tensor>, options: { allowMissing?: (key: string) => boolean } = {}): void {
    const missing = [...this.params.keys()].filter((k) => !tensors.has(k) && !options.allowMissing?.(k));
    const unexpected = [...tensors.keys()].filter((k) => !this.params.has(k));
    const misshaped: { key: string; expected: number[]; actual: number[] }[] = [];
    for (const [k, t] of tensors) {
      const v = this.params.get(k);
      if (v && !tf.util.arraysEqual(v.shape, t.shape)) misshaped.push({ key: k, expected: v.shape, actual: t.shape });
    }
    if (missing.length || unexpected.length || misshaped.length) throw new WeightsError(this.name, missing, unexpected, misshaped);
    for (const [k, t] of tensors) {
      const v = this.params.get(k)!;
      if (t.dtype === v.dtype) v.assign(t);
      else tf.tidy(() => v.assign(tf.cast(t, v.dtype)));
    }
  }

  /** Copies of every parameter, for saving. The caller owns and disposes them. */
  snapshot(filter: (key: string) => boolean = () => true): Map<string, tf.Tensor> {
    return new Map(this.entries().filter(([k]) => filter(k)).map(([k, v]) => [k, v.clone()]));
  }

  dispose(): void {
    for (const v of this.params.values()) v.dispose();
    this.params.clear();
  }
}
