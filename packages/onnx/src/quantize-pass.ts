import { MS_DOMAIN, initializerValues, type GraphBuilder, type GraphNode } from './graph-builder.js';
import { LINEAR_HF_LAYOUT, transposeMatrix } from './layers.js';
import { quantizeBlocks, resolveBlockOptions, type BlockQuantOptions, type BlockQuantized } from './quantize.js';

export interface QuantizePassOptions extends BlockQuantOptions {
  /** Weights with fewer values stay float32 (default 0: every eligible MatMul weight). */
  minElements?: number;
  /** Initializer names to leave in float32. */
  exclude?: (initializerName: string) => boolean;
  /**
   * MatMulNBits `accuracy_level`: 0 (default) computes in float32 after dequantising the weights (weight-only error);
   * 4 lets ORT also quantise the activations to int8 per block (symmetric, absmax / 127) and use integer kernels.
   */
  accuracyLevel?: 0 | 4;
}

export interface QuantizePassResult {
  /** Initializers replaced by block-quantised codes. */
  quantized: string[];
  /** Bytes of float32 weights before, and of codes + scales + zero points after. */
  bytesBefore: number;
  bytesAfter: number;
}

/**
 * The presets exporters offer. Both use accuracy level 4: on onnxruntime-node 1.30's CPU provider MatMulNBits has no
 * fast float32-compute kernel for 8 bits (0.3 GFLOP/s measured for a [1, 896]·[896, 4864] product, 100× slower than
 * float32 MatMul), and at 4 bits the int8-activation kernel is 4× faster than the float32-compute one for one row.
 */
export const QUANT_PRESETS = {
  int8: { bits: 8, blockSize: 32, symmetric: true, accuracyLevel: 4 },
  int4: { bits: 4, blockSize: 32, symmetric: false, accuracyLevel: 4 },
} as const satisfies Record<string, QuantizePassOptions>;

/**
 * Replaces every `MatMul(A, W)` whose `W` is a 2-D float32 initializer `[K, N]` by
 * `com.microsoft::MatMulNBits(A, codes, scales[, zero_points])` with the same output (weight-only quantisation: the
 * activations stay float32). The float32 weight is dropped once no node reads it. A lazy weight gives lazy codes,
 * scales and zero points, quantised when the model is written. Run after building, before writing.
 */
export function quantizeMatMuls(g: GraphBuilder, options: QuantizePassOptions): QuantizePassResult {
  const { bits, blockSize, symmetric } = resolveBlockOptions(options);
  const replaced = new Map<string, { k: number; n: number; inputs: string[] }>();
  let bytesBefore = 0;
  let bytesAfter = 0;
  const eligible = (node: GraphNode) => {
    if (node.opType !== 'MatMul' || node.domain !== '') return false;
    const w = g.initializers.get(node.inputs[1]);
    if (!w || w.dtype !== 'float32' || w.dims.length !== 2 || options.exclude?.(w.name)) return false;
    return w.dims[0] * w.dims[1] >= (options.minElements ?? 0);
  };
  g.rewriteNodes((node) => {
    if (!eligible(node)) return undefined;
    const name = node.inputs[1];
    let q = replaced.get(name);
    if (!q) {
      const w = g.initializers.get(name)!;
      const [k, n] = w.dims;
      const kBlocks = Math.ceil(k / blockSize);
      const codeDims = [n, kBlocks, (blockSize * bits) / 8];
      const scaleDims = [n * kBlocks];
      const zpDims = [n * Math.ceil((kBlocks * bits) / 8)];
      // The initializer is W [K, N]; quantisation runs per output column, i.e. over the rows of Wᵀ [N, K].
      const hfLayout = w.load && LINEAR_HF_LAYOUT.get(w.load);
      const columns = () => (hfLayout ? hfLayout() : transposeMatrix(initializerValues(w) as Float32Array, k, n));
      const quantize = () => quantizeBlocks(columns(), k, n, { bits, blockSize, symmetric });
      const inputs: string[] = [];
      if (w.load) {
        // Lazy weight: codes, scales and zero points load from one quantisation, kept only until all have read it
        // (the writer loads them one after another), so at most one weight is held at a time.
        const parts = symmetric ? 2 : 3;
        let held: BlockQuantized | undefined;
        let reads = 0;
        const part = <T extends Uint8Array | Float32Array>(pick: (b: BlockQuantized) => T) => () => {
          const blocks = (held ??= quantize());
          if (++reads % parts === 0) held = undefined;
          return pick(blocks);
        };
        inputs.push(g.lazyInitializer(g.fresh(`${name}.q${bits}`), 'uint8', codeDims, part((b) => b.codes)));
        inputs.push(g.lazyInitializer(g.fresh(`${name}.scales`), 'float32', scaleDims, part((b) => b.scales)));
        if (!symmetric) inputs.push(g.lazyInitializer(g.fresh(`${name}.zero_points`), 'uint8', zpDims, part((b) => b.zeroPoints!)));
      } else {
        const blocks = quantize();
        inputs.push(g.initializer(g.fresh(`${name}.q${bits}`), blocks.codes, codeDims));
        inputs.push(g.initializer(g.fresh(`${name}.scales`), blocks.scales, scaleDims));
        if (blocks.zeroPoints) inputs.push(g.initializer(g.fresh(`${name}.zero_points`), blocks.zeroPoints, zpDims));
      }
      bytesBefore += w.byteLength;
      bytesAfter += inputs.reduce((sum, input) => sum + g.initializers.get(input)!.byteLength, 0);
      q = { k, n, inputs };
      replaced.set(name, q);
    }
    const attributes = { K: q.k, N: q.n, bits, block_size: blockSize, accuracy_level: options.accuracyLevel ?? 0 };
    return [{ ...node, opType: 'MatMulNBits', domain: MS_DOMAIN, inputs: [node.inputs[0], ...q.inputs], attributes }];
  });
  for (const name of replaced.keys()) if (!g.nodes.some((n) => n.inputs.includes(name))) g.removeInitializer(name);
  return { quantized: [...replaced.keys()], bytesBefore, bytesAfter };
}
