import type * as tf from '@tensorflow/tfjs-core';
import type { z } from 'zod';
import { ConfigError, UnknownKindError } from './errors.js';
import type { ParameterStore } from './parameter-store.js';
import type { Rng } from './random.js';

/** What a stage may read besides its input: training mode and its seeded randomness. Never a global. */
export interface StageContext {
  /** Training mode (dropout, straight-through, noise decisions). */
  training: boolean;
  /** The stage's own generator; Gumbel noise and dropout draw from it. */
  rng: Rng;
}

/** A swappable pipeline stage; `kind` is its registry key, `config` is already validated. */
export interface Stage<Config extends { kind: string }, Input, Output> {
  readonly kind: Config['kind'];
  readonly config: Readonly<Config>;
  /** Returns new tensors the caller owns; disposes its own intermediates. */
  apply(input: Input, context: StageContext): Output;
  /** Trainable tensors by checkpoint key, e.g. `frameSelect.queries`. Empty for parameter-free stages. */
  variables(): ReadonlyMap<string, tf.Variable>;
  /** Strict: one WeightsError lists every missing, unexpected or mis-shaped key. */
  loadWeights(tensors: ReadonlyMap<string, tf.Tensor>): void;
  /** Frees the stage's variables. */
  dispose(): void;
}

/** One registered kind: its config schema (discriminated on `kind`) and a factory. */
export interface StageDefinition<Config extends { kind: string }, S> {
  schema: z.ZodType<Config, z.ZodTypeDef, unknown>;
  create(config: Config, deps: StageDependencies): S;
  /** One line for `--help` and error messages. */
  description: string;
}

/** What a factory may need beyond its config (a seed for initial weights, dimensions of its neighbours). */
export interface StageDependencies {
  rng: Rng;
  /** Widths fixed by the neighbouring stages: Cv, Cq, D … by name. */
  dims: Readonly<Record<string, number>>;
}

/** Formats a zod failure as a ConfigError naming the first bad field's path. */
export function configErrorFrom(what: string, error: z.ZodError): ConfigError {
  const issue = error.issues[0];
  const path = issue?.path ?? [];
  const where = path.length ? path.join('.') : '(root)';
  return new ConfigError(`${what}: ${where}: ${issue?.message ?? 'invalid'}`, path, { cause: error });
}

/**
 * A registry of stage kinds for one pipeline slot (`frame-select`, `token-merge`, …). A pipeline config names a
 * `kind` per slot, so an ablation swaps a stage by config, not by code.
 */
export class StageRegistry<S> {
  private readonly definitions = new Map<string, StageDefinition<{ kind: string }, S>>();

  constructor(readonly slot: string) {}

  register<Config extends { kind: string }>(kind: Config['kind'], definition: StageDefinition<Config, S>): this {
    if (this.definitions.has(kind)) throw new Error(`${this.slot}: kind "${kind}" registered twice`);
    this.definitions.set(kind, definition as unknown as StageDefinition<{ kind: string }, S>);
    return this;
  }

  kinds(): string[] {
    return [...this.definitions.keys()];
  }

  describe(): { kind: string; description: string }[] {
    return [...this.definitions].map(([kind, d]) => ({ kind, description: d.description }));
  }

  /** Validates `config` against its kind's schema, filling defaults. Throws UnknownKindError or ConfigError. */
  parse(config: unknown): { kind: string } {
    const kind = (config as { kind?: unknown } | null)?.kind;
    if (typeof kind !== 'string') throw new ConfigError(`${this.slot}: missing "kind" (valid: ${this.kinds().join(', ')})`, ['kind']);
    const definition = this.definitions.get(kind);
    if (!definition) throw new UnknownKindError(this.slot, kind, this.kinds());
    const result = definition.schema.safeParse(config);
    if (!result.success) throw configErrorFrom(`${this.slot} "${kind}"`, result.error);
    return result.data;
  }

  create(config: unknown, deps: StageDependencies): S {
    const parsed = this.parse(config);
    return this.definitions.get(parsed.kind)!.create(parsed, deps);
  }
}

/**
 * The parameter side of a stage whose parameters all live in one {@link ParameterStore}: the three Stage methods
 * every such stage would otherwise repeat.
 */
export abstract class StoreBackedStage {
  protected constructor(protected readonly store: ParameterStore) {}

  /** Trainable tensors by checkpoint key. */
  variables(): ReadonlyMap<string, tf.Variable> {
    return new Map(this.store.entries());
  }

  /** Strict: one WeightsError lists every missing, unexpected or mis-shaped key. */
  loadWeights(tensors: ReadonlyMap<string, tf.Tensor>): void {
    this.store.load(tensors);
  }

  dispose(): void {
    this.store.dispose();
  }
}

/** Validates a config at a package boundary: the typed value, or a ConfigError naming the zod path of the bad field. */
export function parseConfig<S extends z.ZodTypeAny>(schema: S, value: unknown, what: string): z.infer<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw configErrorFrom(what, result.error);
  return result.data;
}
