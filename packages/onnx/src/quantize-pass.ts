import { InvalidArgumentError } from '@bvllm/core';
import type { InitializerData, OnnxDtype } from './data-types.js';
import { MS_DOMAIN, initializerValues, type GraphBuilder, type GraphNode } from './graph-builder.js';
import { LINEAR_HF_LAYOUT, transposeMatrix } from './layers.js';
import { quantizeBlocks, quantizeColumnsInt8, resolveBlockOptions, type BlockQuantOptions, type BlockQuantized, type ColumnQuantized } from './quantize.js';

/** Which MatMul weights a pass replaces. */
export interface MatMulSelection {
  /** Weights with fewer values stay float32 (default 0: every eligible MatMul weight). */
  minElements?: number;
  /** Initializer names to leave in float32. */
  exclude?: (initializerName: string) => boolean;
}

export interface QuantizePassOptions extends BlockQuantOptions, MatMulSelection {
  /**
   * MatMulNBits `accuracy_level`: 0 (default) computes in float32 after dequantising the weights (weight-only error);
   * 4 lets ORT also quantise the activations to int8 per block (symmetric, absmax / 127) and use integer kernels.
   */
  accuracyLevel?: 0 | 4;
}

export interface QuantizePassResult {
  /** Initializers replaced by quantised codes. */
  quantized: string[];
  /** Bytes of float32 weights before, and of codes + scales + zero points after. */
  bytesBefore: number;
  bytesAfter: number;
}

/**
 * The presets exporters offer, by the name a user types.
 *
 * - `int8`, `int4`: weight-only blocks of 32 in `MatMulNBits`, accuracy level 4. On onnxruntime-node 1.30's CPU
 *   provider MatMulNBits has no fast float32-compute kernel for 8 bits (0.3 GFLOP/s measured for a [1, 896]·[896,
 *   4864] product, 100× slower than float32 MatMul), and at 4 bits the int8-activation kernel is 4× faster than the
 *   float32-compute one for one row. Best for decoding (one row, memory-bound).
 * - `dynamic-int8`: per-column int8 weights in `DynamicQuantizeMatMul`, activations quantised per tensor at run time,
 *   an integer GEMM (VNNI/AMX where the CPU has them). Best for many rows: a vision tower, a Q-Former, a prefill.
 *   Its error is larger where activations have outliers (one scale per call); float32 I/O only.
 */
export const QUANT_PRESETS = {
  int8: { bits: 8, blockSize: 32, symmetric: true, accuracyLevel: 4 },
  int4: { bits: 4, blockSize: 32, symmetric: false, accuracyLevel: 4 },
  'dynamic-int8': { dynamic: true },
} as const satisfies Record<string, QuantizePassOptions | { dynamic: true }>;

export type QuantizePreset = keyof typeof QUANT_PRESETS;

/** Every preset name, for option parsers. */
export const QUANTIZE_PRESET_NAMES = Object.keys(QUANT_PRESETS) as QuantizePreset[];

/** Runs the pass a preset names over `g`. */
export function quantizeGraph(g: GraphBuilder, preset: QuantizePreset, selection: MatMulSelection = {}): QuantizePassResult {
  const options = QUANT_PRESETS[preset] as QuantizePassOptions | { dynamic: true } | undefined;
  if (!options) throw new InvalidArgumentError('quantize', `unknown preset ${JSON.stringify(preset)}; expected one of ${QUANTIZE_PRESET_NAMES.join(', ')}`);
  return 'dynamic' in options ? dynamicQuantizeMatMuls(g, selection) : quantizeMatMuls(g, { ...options, ...selection });
}

/** How one pass turns a weight `W [K, N]` into initializers and the node that reads them. */
interface MatMulCodec<Q> {
  /** Quantises the weight given column by column (`columns[n · K + k] = W[k, n]`). */
  encode(columns: Float32Array, k: number, n: number): Q;
  parts: readonly { suffix: string; dtype: OnnxDtype; dims(k: number, n: number): number[]; pick(q: Q): InitializerData }[];
  node(k: number, n: number): Pick<GraphNode, 'opType' | 'attributes'> & Partial<Pick<GraphNode, 'keepFloat32'>>;
}

/**
 * Replaces every `MatMul(A, W)` whose `W` is a 2-D float32 initializer `[K, N]` by the codec's node over its
 * initializers; the float32 weight is dropped once no node reads it. A lazy weight gives lazy parts, quantised when
 * the model is written, and held only until every part has been read (the writer loads them one after another), so
 * at most one weight is held at a time.
 */
function replaceWeightMatMuls<Q>(g: GraphBuilder, selection: MatMulSelection, codec: MatMulCodec<Q>): QuantizePassResult {
  const replaced = new Map<string, { k: number; n: number; inputs: string[] }>();
  let bytesBefore = 0;
  let bytesAfter = 0;
  const eligible = (node: GraphNode) => {
    if (node.opType !== 'MatMul' || node.domain !== '') return false;
    const w = g.initializers.get(node.inputs[1]);
    if (!w || w.dtype !== 'float32' || w.dims.length !== 2 || selection.exclude?.(w.name)) return false;
    return w.dims[0] * w.dims[1] >= (selection.minElements ?? 0);
  };
  g.rewriteNodes((node) => {
    if (!eligible(node)) return undefined;
    const name = node.inputs[1];
    let q = replaced.get(name);
    if (!q) {
      const w = g.initializers.get(name)!;
      const [k, n] = w.dims;
      // The initializer is W [K, N]; quantisation runs per output column, i.e. over the rows of Wᵀ [N, K].
      const hfLayout = w.load && LINEAR_HF_LAYOUT.get(w.load);
      const columns = () => (hfLayout ? hfLayout() : transposeMatrix(initializerValues(w) as Float32Array, k, n));
      const encode = () => codec.encode(columns(), k, n);
      let inputs: string[];
      if (w.load) {
        let held: Q | undefined;
        let reads = 0;
        inputs = codec.parts.map((part) =>
          g.lazyInitializer(g.fresh(`${name}.${part.suffix}`), part.dtype, part.dims(k, n), () => {
            const encoded = (held ??= encode());
            if (++reads % codec.parts.length === 0) held = undefined;
            return part.pick(encoded);
          }),
        );
      } else {
        const encoded = encode();
        inputs = codec.parts.map((part) => g.initializer(g.fresh(`${name}.${part.suffix}`), part.pick(encoded), part.dims(k, n)));
      }
      bytesBefore += w.byteLength;
      bytesAfter += inputs.reduce((sum, input) => sum + g.initializers.get(input)!.byteLength, 0);
      q = { k, n, inputs };
      replaced.set(name, q);
    }
    return [{ ...node, ...codec.node(q.k, q.n), domain: MS_DOMAIN, inputs: [node.inputs[0], ...q.inputs] }];
  });
  for (const name of replaced.keys()) if (!g.nodes.some((n) => n.inputs.includes(name))) g.removeInitializer(name);
  return { quantized: [...replaced.keys()], bytesBefore, bytesAfter };
}

/**
 * `com.microsoft::MatMulNBits(A, codes, scales[, zero_points])` with the same output as each `MatMul(A, W)`
 * (weight-only quantisation: the activations stay float32 unless `accuracyLevel` is 4). Run after building, before
 * writing.
 */
export function quantizeMatMuls(g: GraphBuilder, options: QuantizePassOptions): QuantizePassResult {
  const { bits, blockSize, symmetric } = resolveBlockOptions(options);
  const kBlocks = (k: number) => Math.ceil(k / blockSize);
  const parts: MatMulCodec<BlockQuantized>['parts'] = [
    { suffix: `q${bits}`, dtype: 'uint8', dims: (k, n) => [n, kBlocks(k), (blockSize * bits) / 8], pick: (b) => b.codes },
    { suffix: 'scales', dtype: 'float32', dims: (k, n) => [n * kBlocks(k)], pick: (b) => b.scales },
    ...(symmetric ? [] : [{ suffix: 'zero_points', dtype: 'uint8' as const, dims: (k: number, n: number) => [n * Math.ceil((kBlocks(k) * bits) / 8)], pick: (b: BlockQuantized) => b.zeroPoints! }]),
  ];
  return replaceWeightMatMuls(g, options, {
    encode: (columns, k, n) => quantizeBlocks(columns, k, n, { bits, blockSize, symmetric }),
    parts,
    node: (k, n) => ({ opType: 'MatMulNBits', attributes: { K: k, N: n, bits, block_size: blockSize, accuracy_level: options.accuracyLevel ?? 0 } }),
  });
}

/**
 * `com.microsoft::DynamicQuantizeMatMul(A, codes, scales[, , bias])` for each `MatMul(A, W)`: int8 per-column
 * weights ({@link quantizeColumnsInt8}), activations quantised to uint8 per call. A bias that a lone `Add` puts on
 * the product right after is folded into the node, so the output is written once. Run after building, before
 * writing. The nodes stay float32 in a float16 graph (the CPU kernel takes float32 only).
 */
export function dynamicQuantizeMatMuls(g: GraphBuilder, selection: MatMulSelection = {}): QuantizePassResult {
  const result = replaceWeightMatMuls<ColumnQuantized>(g, selection, {
    encode: quantizeColumnsInt8,
    parts: [
      { suffix: 'q8', dtype: 'int8', dims: (k, n) => [k, n], pick: (q) => q.codes },
      { suffix: 'scales', dtype: 'float32', dims: (_, n) => [n], pick: (q) => q.scales },
    ],
    // The CPU kernel takes float32 only: a float16 graph casts around it.
    node: () => ({ opType: 'DynamicQuantizeMatMul', attributes: {}, keepFloat32: true }),
  });
  foldBiases(g);
  return result;
}

/** `Add(DynamicQuantizeMatMul(…), b)` with `b` a float32 `[N]` initializer and the product read only there → one node. */
function foldBiases(g: GraphBuilder): void {
  const readers = new Map<string, number>();
  for (const node of g.nodes) for (const input of node.inputs) readers.set(input, (readers.get(input) ?? 0) + 1);
  const producers = new Map(g.nodes.filter((n) => n.opType === 'DynamicQuantizeMatMul' && n.inputs.length === 3).map((n) => [n.outputs[0], n]));
  const folded = new Map<GraphNode, GraphNode>();
  const dropped = new Set<GraphNode>();
  for (const node of g.nodes) {
    if (node.opType !== 'Add' || node.domain !== '') continue;
    const productIndex = node.inputs.findIndex((input) => producers.has(input) && readers.get(input) === 1);
    if (productIndex < 0) continue;
    const product = producers.get(node.inputs[productIndex])!;
    const bias = g.initializers.get(node.inputs[1 - productIndex]);
    const n = g.initializers.get(product.inputs[1])!.dims[1];
    if (!bias || bias.dtype !== 'float32' || bias.dims.length !== 1 || bias.dims[0] !== n || folded.has(product)) continue;
    folded.set(product, { ...product, inputs: [...product.inputs, '', bias.name], outputs: node.outputs });
    dropped.add(node);
  }
  if (folded.size) g.replaceNodes(g.nodes.flatMap((n) => (dropped.has(n) ? [] : [folded.get(n) ?? n])));
}
