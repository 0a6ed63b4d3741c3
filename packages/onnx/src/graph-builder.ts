import { tf } from '@bvllm/core';
import { OnnxGraphError } from './errors.js';
import { DTYPE_BYTES, dtypeOfArray, type InitializerData, type OnnxDtype } from './data-types.js';
import { Ops } from './ops.js';

/** A dimension: a fixed size, or a symbolic name written as ONNX `dim_param` (e.g. `batch_size`). */
export type Dim = number | string;

/** A typed graph input or output, written as `value_info`. */
export interface ValueInfo {
  readonly name: string;
  readonly dtype: OnnxDtype;
  readonly dims: readonly Dim[];
}

/**
 * A constant tensor stored in the model (weights, shape constants): eager (`data`, whose length is the product of
 * `dims`) or lazy (`load`, called when the model is written and not kept, so a large model's weights are never all
 * in memory). Read the values of either with {@link initializerValues}.
 */
export interface Initializer {
  readonly name: string;
  readonly dtype: OnnxDtype;
  readonly dims: readonly number[];
  /** The values of an eager initializer; absent for a lazy one. */
  readonly data?: InitializerData;
  /** Computes a lazy initializer's values (fresh on every call); absent for an eager one. */
  readonly load?: () => InitializerData;
  /** Bytes of the values, known without loading them. */
  readonly byteLength: number;
}

/** An initializer's values: its data, or a fresh load checked against its dtype and dims. */
export function initializerValues(init: Initializer): InitializerData {
  if (init.data) return init.data;
  if (!init.load) throw new OnnxGraphError(`initializer "${init.name}" has neither data nor load()`);
  const data = init.load();
  const size = init.dims.reduce((a, b) => a * b, 1);
  if (dtypeOfArray(data) !== init.dtype || data.length !== size)
    throw new OnnxGraphError(
      `initializer "${init.name}": load() returned ${data.length} ${dtypeOfArray(data)} values, expected ${size} ${init.dtype} for dims [${init.dims.join(', ')}]`,
    );
  return data;
}

/**
 * An attribute value. Integers become INT, other numbers FLOAT, `{ f }` forces FLOAT (epsilon = 1 is a float),
 * arrays become INTS or FLOATS, strings STRING, `{ tensor }` a TENSOR attribute.
 */
export type AttributeValue =
  | number
  | { readonly f: number }
  | readonly number[]
  | { readonly floats: readonly number[] }
  | string
  | { readonly tensor: { readonly dtype: OnnxDtype; readonly dims: readonly number[]; readonly data: InitializerData } };

export interface GraphNode {
  readonly name: string;
  readonly opType: string;
  /** `''` marks an omitted optional input. */
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attributes: Readonly<Record<string, AttributeValue>>;
  /** `''` is the default `ai.onnx` domain; contrib ops use `com.microsoft`. */
  readonly domain: string;
  /** Built inside {@link GraphBuilder.float32Region}: {@link convertToFloat16} leaves it in float32. */
  readonly keepFloat32?: boolean;
}

/** The default opset of the `ai.onnx` domain (the fixture exports' opset, supported by onnxruntime 1.30). */
export const DEFAULT_OPSET = 18;
/** Version of the `com.microsoft` contrib domain, imported when a node uses it. */
export const MS_DOMAIN = 'com.microsoft';

/**
 * Builds one ONNX graph: typed inputs and outputs, initializers, and nodes appended in topological order (a node may
 * only read values that exist when it is added, which keeps the graph valid by construction; {@link checkModel}
 * verifies a finished model independently). Op helpers live on `g.op` (see ops.ts), composite layers in layers.ts.
 */
export class GraphBuilder {
  private readonly inputList: ValueInfo[] = [];
  private readonly outputList: ValueInfo[] = [];
  private readonly inits = new Map<string, Initializer>();
  private nodeList: GraphNode[] = [];
  /** Every value name that exists: graph inputs, initializers and node outputs. */
  private readonly values = new Set<string>();
  private readonly counters = new Map<string, number>();
  /** Small constants by dtype and content, so `g.constant` of the same value yields one initializer. */
  private readonly constantCache = new Map<string, string>();
  /** Depth of {@link float32Region} calls in progress. */
  private float32Depth = 0;

  /** Typed helpers for the standard ops, appending to this graph. */
  readonly op: Ops = new Ops(this);

  constructor(
    readonly name: string,
    readonly opset: number = DEFAULT_OPSET,
  ) {}

  /** Declares a graph input; returns its name. */
  input(name: string, dtype: OnnxDtype, dims: readonly Dim[]): string {
    this.claim(name, 'graph input');
    this.inputList.push({ name, dtype, dims: [...dims] });
    return name;
  }

  /**
   * Declares a graph output `name` with its type. `source` is the value it carries when that is not already called
   * `name` (an Identity node renames it).
   */
  output(name: string, dtype: OnnxDtype, dims: readonly Dim[], source?: string): string {
    if (source !== undefined && source !== name) this.node('Identity', [source], [name]);
    if (!this.values.has(name)) throw new OnnxGraphError(`graph output "${name}" is not produced by any node, input or initializer`);
    if (this.outputList.some((o) => o.name === name)) throw new OnnxGraphError(`graph output "${name}" is declared twice`);
    this.outputList.push({ name, dtype, dims: [...dims] });
    return name;
  }

  /** Adds a constant tensor under `name`; the array type fixes the dtype (Uint16Array holds float16 bits). */
  initializer(name: string, data: InitializerData, dims: readonly number[]): string {
    const size = dims.reduce((a, b) => a * b, 1);
    if (size !== data.length) throw new OnnxGraphError(`initializer "${name}": dims [${dims.join(', ')}] hold ${size} values, data has ${data.length}`);
    this.claim(name, 'initializer');
    this.inits.set(name, { name, dtype: dtypeOfArray(data), dims: [...dims], data, byteLength: data.byteLength });
    return name;
  }

  /**
   * Adds an initializer whose values `load` computes when the model is written (once per write, not kept): a weight
   * read from a checkpoint, transposed, fused or quantised only then. `load` must return `dtype` values for `dims`.
   */
  lazyInitializer(name: string, dtype: OnnxDtype, dims: readonly number[], load: () => InitializerData): string {
    if (dtype === 'bool') throw new OnnxGraphError(`initializer "${name}": lazy bool initializers are not supported`);
    this.claim(name, 'initializer');
    const size = dims.reduce((a, b) => a * b, 1);
    this.inits.set(name, { name, dtype, dims: [...dims], load, byteLength: size * DTYPE_BYTES[dtype] });
    return name;
  }

  /**
   * Replaces initializer `name` by another of the same name (a pass changing its dtype or computing it lazily);
   * the nodes reading it must accept the new type.
   */
  replaceInitializer(init: Initializer): void {
    if (!this.inits.has(init.name)) throw new OnnxGraphError(`initializer "${init.name}" does not exist`);
    this.inits.set(init.name, init);
  }

  /** Adds a float32 or int32 tfjs tensor as an initializer (its values are copied out once). */
  initializerFromTensor(name: string, tensor: tf.Tensor): string {
    if (tensor.dtype !== 'float32' && tensor.dtype !== 'int32')
      throw new OnnxGraphError(`initializer "${name}": tfjs dtype ${tensor.dtype} is not float32 or int32`);
    return this.initializer(name, tensor.dataSync() as Float32Array | Int32Array, tensor.shape);
  }

  /**
   * A small constant (shape vectors, scalars, epsilon), deduplicated by content so repeated helpers share it.
   * `dims` defaults to a 1-D vector; pass `[]` for a scalar.
   */
  constant(data: InitializerData, dims: readonly number[] = [data.length]): string {
    const key = `${dtypeOfArray(data)}|${dims.join(',')}|${Array.from(data as ArrayLike<number | bigint>, String).join(',')}`;
    const cached = this.constantCache.get(key);
    if (cached) return cached;
    const name = this.initializer(this.fresh('const'), data, dims);
    this.constantCache.set(key, name);
    return name;
  }

  /** int64 constant vector (shapes, axes, starts); `scalar` makes it rank 0. */
  int64(values: readonly number[], scalar = false): string {
    return this.constant(BigInt64Array.from(values, (v) => BigInt(v)), scalar ? [] : [values.length]);
  }

  /** float32 constant; a single number is a scalar. */
  float(values: number | readonly number[]): string {
    return typeof values === 'number' ? this.constant(new Float32Array([values]), []) : this.constant(Float32Array.from(values));
  }

  /**
   * Appends a node; returns its output names. `outputs` is a list of names or a count of fresh names (default 1).
   * Every non-empty input must already exist, so nodes stay in topological order.
   */
  node(opType: string, inputs: readonly string[], outputs: readonly string[] | number = 1, attributes: Record<string, AttributeValue> = {}, domain = ''): string[] {
    const nodeName = this.fresh(opType);
    for (const input of inputs)
      if (input !== '' && !this.values.has(input)) throw new OnnxGraphError(`node ${nodeName} (${opType}): input "${input}" is not defined before it`);
    const outs = typeof outputs === 'number' ? Array.from({ length: outputs }, () => this.fresh(`${opType}_out`)) : [...outputs];
    // An empty name skips an optional output (ONNX's convention), so only named outputs are claimed.
    for (const out of outs) if (out !== '') this.claim(out, `output of node ${nodeName}`);
    const node: GraphNode = { name: nodeName, opType, inputs: [...inputs], outputs: outs, attributes, domain };
    this.nodeList.push(this.float32Depth > 0 ? { ...node, keepFloat32: true } : node);
    return outs;
  }

  /** Like {@link node} for the common single-output case. */
  node1(opType: string, inputs: readonly string[], attributes: Record<string, AttributeValue> = {}, domain = ''): string {
    return this.node(opType, inputs, 1, attributes, domain)[0];
  }

  get inputs(): readonly ValueInfo[] {
    return this.inputList;
  }

  get outputs(): readonly ValueInfo[] {
    return this.outputList;
  }

  get nodes(): readonly GraphNode[] {
    return this.nodeList;
  }

  get initializers(): ReadonlyMap<string, Initializer> {
    return this.inits;
  }

  /** Domains the nodes use, with the opset version each is imported at. */
  opsetImports(): Map<string, number> {
    const imports = new Map<string, number>([['', this.opset]]);
    for (const node of this.nodeList) if (node.domain === MS_DOMAIN) imports.set(MS_DOMAIN, 1);
    return imports;
  }

  /**
   * Graph passes (quantisation): `fn` returns replacement nodes for a node (which must keep its outputs) or
   * undefined to keep it. Replacement nodes may read initializers added by the pass before the call.
   */
  rewriteNodes(fn: (node: GraphNode) => readonly GraphNode[] | undefined): void {
    this.nodeList = this.nodeList.flatMap((node) => fn(node) ?? [node]);
  }

  /**
   * Nodes added by `build` stay float32 when the graph is converted to float16 (values that overflow float16 or
   * need its missing integer precision: rotary angles, sums of squares); Casts are added at the region's borders.
   */
  float32Region<T>(build: () => T): T {
    this.float32Depth++;
    try {
      return build();
    } finally {
      this.float32Depth--;
    }
  }

  /** Adds a prepared initializer (a pass's converted copy) under its own, unused name. */
  addInitializer(init: Initializer): string {
    this.claim(init.name, 'initializer');
    this.inits.set(init.name, init);
    return init.name;
  }

  /** Reserves a value name a pass gives a node output it adds through {@link replaceNodes}. */
  claimValue(name: string): void {
    this.claim(name, 'value');
  }

  /**
   * Replaces the whole node list (passes that add nodes, e.g. Casts). The list must be in topological order and
   * define every value it reads; names of new outputs are claimed with {@link claimValue} first.
   */
  replaceNodes(nodes: readonly GraphNode[]): void {
    const defined = new Set([...this.inputList.map((i) => i.name), ...this.inits.keys()]);
    for (const node of nodes) {
      for (const input of node.inputs)
        if (input !== '' && !defined.has(input)) throw new OnnxGraphError(`node ${node.name} (${node.opType}): input "${input}" is not defined before it`);
      for (const out of node.outputs) defined.add(out);
    }
    this.nodeList = [...nodes];
  }

  /** Drops an initializer no node reads any more (after a rewrite). */
  removeInitializer(name: string): void {
    if (this.nodeList.some((n) => n.inputs.includes(name))) throw new OnnxGraphError(`initializer "${name}" is still read by a node`);
    this.inits.delete(name);
    this.values.delete(name);
  }

  /** A name not yet used in this graph, `${prefix}_${n}`. */
  fresh(prefix: string): string {
    let n = this.counters.get(prefix) ?? 0;
    let name: string;
    do name = `${prefix}_${n++}`;
    while (this.values.has(name));
    this.counters.set(prefix, n);
    return name;
  }

  private claim(name: string, what: string): void {
    if (name === '') throw new OnnxGraphError(`${what}: empty name`);
    if (this.values.has(name)) throw new OnnxGraphError(`${what} "${name}": the name is already defined in graph ${this.name}`);
    this.values.add(name);
  }
}
