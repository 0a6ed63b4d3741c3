/**
 * The float16 pass (issue #18): a float32 graph becomes one whose weights and activations are float16 (half the
 * bytes, the CUDA provider's tensor-core path), while its graph inputs and outputs keep float32 through Cast nodes
 * at the edges, so callers feed and read the same tensors as before. Regions built inside
 * {@link GraphBuilder.float32Region} (rotary angles, RMSNorm's mean of squares) stay float32, with Casts at their
 * borders: their values overflow or lose integer precision in float16.
 */
import { f32ToF16 } from '@bvllm/core';
import { ONNX_DTYPE, dtypeOfNumber, type InitializerData, type OnnxDtype } from './data-types.js';
import { initializerValues, type AttributeValue, type GraphBuilder, type GraphNode, type Initializer } from './graph-builder.js';
import { MASKED_SCORE } from './layers.js';

/**
 * {@link MASKED_SCORE} in float16 graphs. Half the float16 range rather than its minimum (−65504): adding a score to
 * −65504 can round to −∞, and a fully masked row of −∞ (left padding) turns softmax into NaN.
 */
export const MASKED_SCORE_F16 = -32768;

const F16_MAX = 65504;

/** float32 values as float16 bits; {@link MASKED_SCORE} becomes {@link MASKED_SCORE_F16}, other overflows clamp to ±65504. */
export function toFloat16(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  const masked = Math.fround(MASKED_SCORE);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    out[i] = f32ToF16(v === masked ? MASKED_SCORE_F16 : Number.isFinite(v) ? Math.max(-F16_MAX, Math.min(F16_MAX, v)) : v);
  }
  return out;
}

const BOOL_OUT = new Set(['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'And', 'Or', 'Not', 'Xor', 'IsNaN', 'IsInf']);
const INT64_OUT = new Set(['Shape', 'Size', 'ArgMax', 'ArgMin', 'NonZero']);

/** Element type of every value: graph inputs, initializers and node outputs (rules for the ops the builders emit). */
function inferTypes(g: GraphBuilder): Map<string, OnnxDtype> {
  const types = new Map<string, OnnxDtype>();
  for (const input of g.inputs) types.set(input.name, input.dtype);
  for (const init of g.initializers.values()) types.set(init.name, init.dtype);
  for (const node of g.nodes) {
    const first = node.inputs.find((i) => i !== '');
    const inputType = (i: number) => types.get(node.inputs[i]);
    let out: (OnnxDtype | undefined)[];
    if (node.opType === 'Cast') out = [dtypeOfNumber(node.attributes.to as number)];
    else if (BOOL_OUT.has(node.opType)) out = [];
    else if (INT64_OUT.has(node.opType)) out = ['int64'];
    else if (node.opType === 'Where') out = [inputType(1)];
    else if (node.opType === 'TopK') out = [inputType(0), 'int64'];
    else if (node.opType === 'ConstantOfShape') {
      const value = node.attributes.value as { tensor?: { dtype: OnnxDtype } } | undefined;
      out = [value?.tensor?.dtype ?? 'float32'];
    } else out = [first === undefined ? undefined : types.get(first)];
    node.outputs.forEach((name, i) => {
      // Bool outputs are not tracked (no dtype name for them here); only float32 matters to the pass.
      const t = BOOL_OUT.has(node.opType) ? undefined : (out[i] ?? out[0]);
      if (t) types.set(name, t);
    });
  }
  return types;
}

function f16Initializer(init: Initializer, name = init.name): Initializer {
  const dims = init.dims;
  const byteLength = init.byteLength / 2;
  if (init.load) {
    const load = () => toFloat16(initializerValues(init) as Float32Array);
    return { name, dtype: 'float16', dims, load, byteLength };
  }
  return { name, dtype: 'float16', dims, data: toFloat16(init.data as Float32Array), byteLength };
}

function f16Attribute(value: AttributeValue): AttributeValue {
  if (typeof value === 'object' && value !== null && 'tensor' in value && value.tensor.dtype === 'float32')
    return { tensor: { dtype: 'float16', dims: value.tensor.dims, data: toFloat16(value.tensor.data as Float32Array) as InitializerData } };
  return value;
}

/**
 * Converts `g` in place to float16 compute (see the module comment): float32 initializers become float16 (lazy ones
 * convert when loaded), float constants in attributes too, `Cast(to = float32)` nodes retarget to float16, float32
 * graph inputs are cast to float16 where they are read and float32 graph outputs are cast back from float16.
 * Run after building (and after {@link quantizeMatMuls}, whose scales then become float16), before writing.
 */
export function convertToFloat16(g: GraphBuilder): void {
  const types = inferTypes(g);
  const isFloat = (name: string) => types.get(name) === 'float32';
  const kept = (node: GraphNode) => node.keepFloat32 === true;

  // Which precision reads each float32 initializer: float16 nodes get a float16 copy, float32 regions the original.
  const readers = new Map<string, { f16: boolean; f32: boolean }>();
  for (const node of g.nodes)
    for (const input of node.inputs) {
      const init = g.initializers.get(input);
      // A Cast reads either precision, so it never needs a converted input.
      if (!init || init.dtype !== 'float32' || node.opType === 'Cast') continue;
      const r = readers.get(input) ?? { f16: false, f32: false };
      if (kept(node)) r.f32 = true;
      else r.f16 = true;
      readers.set(input, r);
    }
  const outputNames = new Set(g.outputs.map((o) => o.name));
  /** Float32 values that stay float32: graph inputs, values produced by float32 regions, initializers only they read. */
  const stays32 = new Set<string>(g.inputs.filter((i) => i.dtype === 'float32').map((i) => i.name));
  /** The float16 copy of each float32 initializer kept for float32 readers. */
  const f16Copy = new Map<string, string>();
  for (const [name, r] of readers) {
    const init = g.initializers.get(name)!;
    if (outputNames.has(name) || (r.f32 && r.f16)) {
      // Read at both precisions (a shared constant) or returned as a graph output: keep it, add a float16 copy.
      const copy = g.fresh(`${name}_f16`);
      g.addInitializer(f16Initializer(init, copy));
      f16Copy.set(name, copy);
      stays32.add(name);
    } else if (!r.f32) g.replaceInitializer(f16Initializer(init));
  }
  // Still float32 after the loop: initializers read by float32 regions, returned as outputs, or read by no node.
  for (const init of g.initializers.values()) if (init.dtype === 'float32') stays32.add(init.name);
  for (const node of g.nodes) if (kept(node)) for (const out of node.outputs) if (isFloat(out)) stays32.add(out);

  // Casts between precisions, each made once, placed right after the value exists.
  const castsAfter = new Map<string, GraphNode[]>();
  const casts = new Map<string, string>();
  const castTo = (value: string, to: 'float16' | 'float32', anchor: string): string => {
    const key = `${value}|${to}`;
    const existing = casts.get(key);
    if (existing) return existing;
    const out = g.fresh(`${value}_${to === 'float16' ? 'f16' : 'f32'}`);
    g.claimValue(out);
    const cast: GraphNode = { name: g.fresh('Cast'), opType: 'Cast', inputs: [value], outputs: [out], attributes: { to: ONNX_DTYPE[to] }, domain: '', keepFloat32: to === 'float32' };
    castsAfter.set(anchor, [...(castsAfter.get(anchor) ?? []), cast]);
    casts.set(key, out);
    return out;
  };
  const producer = new Map<string, string>();
  for (const node of g.nodes) for (const out of node.outputs) producer.set(out, node.name);
  const TOP = '';

  const rewritten = g.nodes.map((node): GraphNode => {
    const inputs = node.inputs.map((input) => {
      if (input === '' || !isFloat(input) || node.opType === 'Cast') return input;
      const is32 = stays32.has(input);
      if (kept(node)) return is32 ? input : castTo(input, 'float32', producer.get(input) ?? TOP);
      if (!is32) return input;
      if (f16Copy.has(input)) return f16Copy.get(input)!;
      return castTo(input, 'float16', producer.get(input) ?? TOP);
    });
    if (kept(node)) return { ...node, inputs };
    const attributes = Object.fromEntries(Object.entries(node.attributes).map(([k, v]) => [k, f16Attribute(v)]));
    if (node.opType === 'Cast' && node.attributes.to === ONNX_DTYPE.float32) attributes.to = ONNX_DTYPE.float16;
    return { ...node, inputs, attributes };
  });

  // Float32 graph outputs produced at float16: the producer writes `<name>_f16`, a final Cast restores `<name>`.
  const renamed = new Map<string, string>();
  const tail: GraphNode[] = [];
  for (const output of g.outputs) {
    if (output.dtype !== 'float32' || stays32.has(output.name)) continue;
    const internal = g.fresh(`${output.name}_f16`);
    g.claimValue(internal);
    renamed.set(output.name, internal);
    tail.push({ name: g.fresh('Cast'), opType: 'Cast', inputs: [internal], outputs: [output.name], attributes: { to: ONNX_DTYPE.float32 }, domain: '', keepFloat32: true });
  }
  const rename = (v: string) => renamed.get(v) ?? v;
  const ordered: GraphNode[] = [...(castsAfter.get(TOP) ?? [])];
  for (const node of rewritten) {
    ordered.push({ ...node, inputs: node.inputs.map(rename), outputs: node.outputs.map(rename) });
    ordered.push(...(castsAfter.get(node.name) ?? []).map((c) => ({ ...c, inputs: c.inputs.map(rename) })));
  }
  ordered.push(...tail);
  g.replaceNodes(ordered);
  // A float32 initializer whose readers all moved to its float16 copy is dropped.
  for (const name of f16Copy.keys()) if (!outputNames.has(name) && !g.nodes.some((n) => n.inputs.includes(name))) g.removeInitializer(name);
}
