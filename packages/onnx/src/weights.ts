/**
 * Weights as graph builders read them (issue #18): eager (a tfjs tensor, or values with their dims) or lazy (dims
 * now, values only when the graph is written). A lazy weight read from a core `WeightSource` keeps an exported
 * model's weights out of memory until the writer streams them to external data one tensor at a time.
 */
import { tf } from '@bvllm/core';
import { OnnxGraphError } from './errors.js';
import type { GraphBuilder } from './graph-builder.js';

/** A weight whose values are read only when the graph is written. `load()` returns `dims`' product of values. */
export interface LazyWeight {
  readonly dims: readonly number[];
  load(): Float32Array;
}

export function lazyWeight(dims: readonly number[], load: () => Float32Array): LazyWeight {
  return { dims: [...dims], load };
}

/** A weight given as a tfjs tensor, as row-major values with their dims, or lazily ({@link LazyWeight}). */
export type WeightInput = tf.Tensor | { readonly data: Float32Array; readonly dims: readonly number[] } | LazyWeight;

/** Weights a graph builder reads by checkpoint key. */
export interface GraphWeights {
  has(key: string): boolean;
  get(key: string): WeightInput;
}

export function isLazyWeight(w: WeightInput): w is LazyWeight {
  return !(w instanceof tf.Tensor) && typeof (w as Partial<LazyWeight>).load === 'function';
}

/** The dims of any weight, without reading its values. */
export function weightDims(w: WeightInput): readonly number[] {
  return w instanceof tf.Tensor ? w.shape : w.dims;
}

/**
 * The values of a weight (a lazy one is loaded, so call this inside a `load()` or on eager weights only).
 * A tensor's values are copied out once; it may be disposed afterwards.
 */
export function weightValues(w: WeightInput): { data: Float32Array; dims: readonly number[] } {
  if (w instanceof tf.Tensor) {
    if (w.dtype !== 'float32') throw new OnnxGraphError(`weight tensor: dtype ${w.dtype}, expected float32`);
    return { data: w.dataSync() as Float32Array, dims: w.shape };
  }
  if (isLazyWeight(w)) {
    const data = w.load();
    const size = w.dims.reduce((a, b) => a * b, 1);
    if (data.length !== size) throw new OnnxGraphError(`lazy weight [${w.dims.join(', ')}]: load() returned ${data.length} values, dims hold ${size}`);
    return { data, dims: w.dims };
  }
  return w;
}

/**
 * A weight computed from others: `fn` gets their values and returns `dims`' values. Lazy when any input is lazy
 * (`fn` then runs inside `load()`), else computed now, so eager tensors may be disposed right after building.
 */
export function mapWeights(inputs: readonly WeightInput[], dims: readonly number[], fn: (values: Float32Array[]) => Float32Array): WeightInput {
  if (!inputs.some(isLazyWeight)) return { data: fn(inputs.map((w) => weightValues(w).data)), dims: [...dims] };
  // Eager inputs are read now: a tfjs tensor may be disposed before the graph is written.
  const held = inputs.map((w) => (isLazyWeight(w) ? w : weightValues(w)));
  return lazyWeight(dims, () => fn(held.map((w) => weightValues(w).data)));
}

/** {@link mapWeights} for one input. */
export function mapWeight(w: WeightInput, dims: readonly number[], fn: (values: Float32Array) => Float32Array): WeightInput {
  return mapWeights([w], dims, ([values]) => fn(values));
}

/** Adds a float32 weight as initializer `name` (lazy stays lazy), with `dims` (default: the weight's own). */
export function weightInitializer(g: GraphBuilder, name: string, w: WeightInput, dims: readonly number[] = weightDims(w)): string {
  const size = dims.reduce((a, b) => a * b, 1);
  const own = weightDims(w).reduce((a, b) => a * b, 1);
  if (size !== own) throw new OnnxGraphError(`weight "${name}": dims [${dims.join(', ')}] hold ${size} values, the weight has ${own}`);
  if (isLazyWeight(w)) return g.lazyInitializer(name, 'float32', dims, () => weightValues(w).data);
  return g.initializer(name, weightValues(w).data, dims);
}

/** What {@link sourceWeights} reads of a core `WeightSource` (any WeightSource is one). */
export interface WeightSourceLike {
  has(key: string): boolean;
  /** Shape without reading the values. */
  info(key: string): { readonly shape: readonly number[] };
  /** One tensor's values as float32, row-major. */
  read(key: string): Float32Array;
}

/**
 * A core `WeightSource` as graph weights under `prefix`: `get` returns a lazy weight (reads only the shape; the
 * values are read by `load()` when the graph is written). A missing key throws the source's typed error at `get`.
 */
export function sourceWeights(source: WeightSourceLike, prefix = ''): GraphWeights {
  return {
    has: (key) => source.has(prefix + key),
    get: (key) => lazyWeight(source.info(prefix + key).shape, () => source.read(prefix + key)),
  };
}

/** tfjs tensors by key (a Map, a ParameterStore) as graph weights under `prefix` (eager). */
export function tensorWeights(tensors: ReadonlyMap<string, tf.Tensor> | { has(key: string): boolean; get(key: string): tf.Tensor }, prefix = ''): GraphWeights {
  return {
    has: (key) => tensors.has(prefix + key),
    get: (key) => {
      const t = tensors.get(prefix + key);
      if (!t) throw new OnnxGraphError(`weight "${prefix + key}" is missing`);
      return t;
    },
  };
}
