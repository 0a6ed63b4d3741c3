import type { onnx as proto } from 'onnx-proto';
import { OnnxGraphError } from './errors.js';
import { DTYPE_BYTES, dtypeOfNumber } from './data-types.js';
import { decodeModel, onnx, type ModelProto } from './serialize.js';

/** protobufjs decodes int64 fields as Long objects when long.js is present, as numbers otherwise. */
function toNumber(value: unknown): number {
  return typeof value === 'number' ? value : Number(String(value));
}

function typeProblems(kind: string, v: proto.IValueInfoProto): string[] {
  const tensor = v.type?.tensorType;
  if (!tensor) return [`${kind} "${v.name}": no tensor type`];
  const problems: string[] = [];
  if (!tensor.elemType) problems.push(`${kind} "${v.name}": no element type`);
  if (!tensor.shape) return [...problems, `${kind} "${v.name}": no shape`];
  (tensor.shape.dim ?? []).forEach((d, i) => {
    // Own properties only: a decoded protobufjs message reads unset fields from its prototype defaults.
    const hasValue = Object.hasOwn(d, 'dimValue') && d.dimValue !== null && toNumber(d.dimValue) >= 0;
    const hasParam = Object.hasOwn(d, 'dimParam') && typeof d.dimParam === 'string' && d.dimParam !== '';
    if (!hasValue && !hasParam) problems.push(`${kind} "${v.name}": dimension ${i} has neither a size nor a symbolic name`);
  });
  return problems;
}

function initializerProblems(t: proto.ITensorProto): string[] {
  const dtype = dtypeOfNumber(t.dataType ?? 0);
  if (!dtype) return [`initializer "${t.name}": unsupported data type ${t.dataType}`];
  const size = (t.dims ?? []).reduce<number>((a, b) => a * toNumber(b), 1);
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    const keys = new Map((t.externalData ?? []).map((e) => [e.key, e.value]));
    if (!keys.get('location')) return [`initializer "${t.name}": external data without a location`];
    const length = keys.get('length');
    if (length !== undefined && length !== null && Number(length) !== size * DTYPE_BYTES[dtype])
      return [`initializer "${t.name}": external length ${length} bytes, dims need ${size * DTYPE_BYTES[dtype]}`];
    return [];
  }
  const raw = t.rawData?.length ?? 0;
  const typed = (t.floatData?.length ?? 0) + (t.int32Data?.length ?? 0) + (t.int64Data?.length ?? 0);
  if (raw && raw !== size * DTYPE_BYTES[dtype]) return [`initializer "${t.name}": raw_data has ${raw} bytes, dims [${(t.dims ?? []).join(', ')}] need ${size * DTYPE_BYTES[dtype]}`];
  if (!raw && typed !== size) return [`initializer "${t.name}": ${typed} values, dims need ${size}`];
  return [];
}

/**
 * Structural validation at the level of `onnx.checker.check_model` (without per-op schemas): IR version and the
 * default opset are stated and every node's domain is imported; graph inputs and outputs are typed and shaped;
 * initializers have consistent sizes and do not shadow inputs; every value is defined once; every node input exists
 * before the node (topological order); every graph output is produced. Throws one {@link OnnxGraphError} listing
 * every problem, each naming its node or tensor.
 */
export function checkModel(model: ModelProto | Uint8Array): void {
  const m = model instanceof Uint8Array ? decodeModel(model) : model;
  const problems: string[] = [];
  if (!m.irVersion) problems.push('model: no ir_version');
  const domains = new Set((m.opsetImport ?? []).map((o) => o.domain ?? ''));
  if (!domains.has('')) problems.push('model: no opset import for the default ai.onnx domain');
  const graph = m.graph;
  if (!graph) throw new OnnxGraphError('model: no graph');

  const defined = new Set<string>();
  const define = (name: string, what: string) => {
    if (!name) problems.push(`${what}: empty name`);
    else if (defined.has(name)) problems.push(`${what} "${name}": name already defined (values are single-assignment)`);
    defined.add(name);
  };
  for (const input of graph.input ?? []) {
    problems.push(...typeProblems('graph input', input));
    define(input.name ?? '', 'graph input');
  }
  const inputNames = new Set((graph.input ?? []).map((i) => i.name));
  for (const init of graph.initializer ?? []) {
    if (inputNames.has(init.name)) problems.push(`initializer "${init.name}" shadows the graph input of the same name`);
    else define(init.name ?? '', 'initializer');
    problems.push(...initializerProblems(init));
  }
  (graph.node ?? []).forEach((node, index) => {
    const label = `node ${node.name || `#${index}`} (${node.opType || '?'})`;
    if (!node.opType) problems.push(`${label}: no op type`);
    if (!domains.has(node.domain ?? '')) problems.push(`${label}: domain "${node.domain}" has no opset import`);
    for (const input of node.input ?? [])
      if (input !== '' && !defined.has(input)) problems.push(`${label}: input "${input}" is not produced by an initializer, a graph input or an earlier node`);
    for (const output of node.output ?? []) if (output !== '') define(output, `output of ${label}`);
  });
  for (const output of graph.output ?? []) {
    problems.push(...typeProblems('graph output', output));
    if (!defined.has(output.name ?? '')) problems.push(`graph output "${output.name}" is not produced by any node, input or initializer`);
  }
  if (problems.length) throw new OnnxGraphError(`invalid ONNX model ${graph.name ?? ''}: ${problems.join('; ')}`);
}
