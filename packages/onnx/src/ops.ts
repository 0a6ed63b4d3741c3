import { ONNX_DTYPE, type OnnxDtype } from './data-types.js';
import type { GraphBuilder } from './graph-builder.js';

/** An int64 vector operand: a value name, or numbers stored once as a shared constant. */
export type Int64Operand = string | readonly number[];

/**
 * Typed helpers for the standard `ai.onnx` ops (opset 18 signatures: axes, shapes and slice bounds are inputs, not
 * attributes). Each appends one node to the builder and returns its output name.
 */
export class Ops {
  constructor(private readonly g: GraphBuilder) {}

  private ints(v: Int64Operand): string {
    return typeof v === 'string' ? v : this.g.int64(v);
  }

  private unary(op: string) {
    return (x: string) => this.g.node1(op, [x]);
  }

  private binary(op: string) {
    return (a: string, b: string) => this.g.node1(op, [a, b]);
  }

  readonly add = this.binary('Add');
  readonly sub = this.binary('Sub');
  readonly mul = this.binary('Mul');
  readonly div = this.binary('Div');
  readonly pow = this.binary('Pow');
  readonly equal = this.binary('Equal');
  readonly less = this.binary('Less');
  readonly greater = this.binary('Greater');
  readonly and = this.binary('And');
  readonly max = this.binary('Max');
  readonly min = this.binary('Min');
  /** numpy-style batched matmul: `[..., M, K] · [..., K, N]`. */
  readonly matMul = this.binary('MatMul');
  readonly sqrt = this.unary('Sqrt');
  readonly reciprocal = this.unary('Reciprocal');
  readonly erf = this.unary('Erf');
  readonly tanh = this.unary('Tanh');
  readonly sigmoid = this.unary('Sigmoid');
  readonly neg = this.unary('Neg');
  readonly cos = this.unary('Cos');
  readonly sin = this.unary('Sin');
  readonly not = this.unary('Not');
  readonly identity = this.unary('Identity');

  /** `alpha · A' · B' + beta · C` with A 2-D. */
  gemm(a: string, b: string, c?: string, options: { transA?: boolean; transB?: boolean; alpha?: number; beta?: number } = {}): string {
    return this.g.node1('Gemm', c ? [a, b, c] : [a, b], {
      transA: options.transA ? 1 : 0,
      transB: options.transB ? 1 : 0,
      alpha: { f: options.alpha ?? 1 },
      beta: { f: options.beta ?? 1 },
    });
  }

  reduceMean(x: string, axes: Int64Operand, keepdims = true): string {
    return this.g.node1('ReduceMean', [x, this.ints(axes)], { keepdims: keepdims ? 1 : 0 });
  }

  reduceSum(x: string, axes: Int64Operand, keepdims = true): string {
    return this.g.node1('ReduceSum', [x, this.ints(axes)], { keepdims: keepdims ? 1 : 0 });
  }

  softmax(x: string, axis = -1): string {
    return this.g.node1('Softmax', [x], { axis });
  }

  /** `shape` may hold 0 (copy that dim) and one -1 (inferred). */
  reshape(x: string, shape: Int64Operand): string {
    return this.g.node1('Reshape', [x, this.ints(shape)]);
  }

  transpose(x: string, perm: readonly number[]): string {
    return this.g.node1('Transpose', [x], { perm });
  }

  concat(xs: readonly string[], axis: number): string {
    return this.g.node1('Concat', xs, { axis });
  }

  gather(x: string, indices: string, axis = 0): string {
    return this.g.node1('Gather', [x, indices], { axis });
  }

  slice(x: string, starts: Int64Operand, ends: Int64Operand, axes?: Int64Operand, steps?: Int64Operand): string {
    const inputs = [x, this.ints(starts), this.ints(ends)];
    if (axes !== undefined) inputs.push(this.ints(axes));
    if (steps !== undefined) inputs.push(this.ints(steps));
    return this.g.node1('Slice', inputs);
  }

  unsqueeze(x: string, axes: Int64Operand): string {
    return this.g.node1('Unsqueeze', [x, this.ints(axes)]);
  }

  squeeze(x: string, axes: Int64Operand): string {
    return this.g.node1('Squeeze', [x, this.ints(axes)]);
  }

  /** The int64 shape of `x`, optionally only dims `start` … `end − 1`. */
  shape(x: string, start?: number, end?: number): string {
    const attributes: Record<string, number> = {};
    if (start !== undefined) attributes.start = start;
    if (end !== undefined) attributes.end = end;
    return this.g.node1('Shape', [x], attributes);
  }

  cast(x: string, to: OnnxDtype): string {
    return this.g.node1('Cast', [x], { to: ONNX_DTYPE[to] });
  }

  where(condition: string, whenTrue: string, whenFalse: string): string {
    return this.g.node1('Where', [condition, whenTrue, whenFalse]);
  }

  /** `[start, limit)` by `delta`, all scalars of one dtype. */
  range(start: string, limit: string, delta: string): string {
    return this.g.node1('Range', [start, limit, delta]);
  }

  cumSum(x: string, axis: string, options: { exclusive?: boolean; reverse?: boolean } = {}): string {
    return this.g.node1('CumSum', [x, axis], { exclusive: options.exclusive ? 1 : 0, reverse: options.reverse ? 1 : 0 });
  }

  expand(x: string, shape: Int64Operand): string {
    return this.g.node1('Expand', [x, this.ints(shape)]);
  }

  /** A tensor of `shape` (an int64 vector value) filled with `value` of `dtype`. */
  constantOfShape(shape: Int64Operand, value: number, dtype: OnnxDtype = 'float32'): string {
    const data = dtype === 'int64' ? BigInt64Array.of(BigInt(value)) : dtype === 'int32' ? Int32Array.of(value) : Float32Array.of(value);
    return this.g.node1('ConstantOfShape', [this.ints(shape)], { value: { tensor: { dtype, dims: [1], data } } });
  }

  /** Upper (default) or lower triangle of the last two dims, shifted by diagonal `k` (an int64 scalar value). */
  trilu(x: string, upper = true, k?: string): string {
    return this.g.node1('Trilu', k ? [x, k] : [x], { upper: upper ? 1 : 0 });
  }

  /** Standard LayerNormalization (opset 17) over the trailing axes from `axis`. */
  layerNormalization(x: string, scale: string, bias: string | undefined, epsilon: number, axis = -1): string {
    return this.g.node1('LayerNormalization', bias ? [x, scale, bias] : [x, scale], { axis, epsilon: { f: epsilon } });
  }
}
