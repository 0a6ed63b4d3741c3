import { closeSync, openSync, renameSync, writeSync } from 'node:fs';
import { basename } from 'node:path';
import onnxProto from 'onnx-proto';
import { ONNX_DTYPE, rawBytes, type InitializerData, type OnnxDtype } from './data-types.js';
import { initializerValues, type AttributeValue, type Dim, type GraphBuilder, type Initializer, type ValueInfo } from './graph-builder.js';

// onnx-proto is CommonJS (protobufjs static code of the official onnx.proto); its namespace sits on the default export.
export const { onnx } = onnxProto;
export type ModelProto = onnxProto.onnx.IModelProto;

/** IR version 10 (ONNX 1.16), what the reference exports declare. */
export const IR_VERSION = 10;

/**
 * Models whose initializers exceed this many bytes are written with external data. Protobuf messages cannot pass
 * 2 GiB, and protobufjs encodes the whole message in memory, so large weights stay out of it well before that.
 */
export const DEFAULT_EXTERNAL_DATA_THRESHOLD = 1024 ** 3;

/** External data entries are aligned to this many bytes so onnxruntime can map them in place. */
const EXTERNAL_ALIGNMENT = 64;

const AttributeType = onnx.AttributeProto.AttributeType;

function attributeProto(name: string, value: AttributeValue): onnxProto.onnx.IAttributeProto {
  if (typeof value === 'string') return { name, type: AttributeType.STRING, s: new TextEncoder().encode(value) };
  if (typeof value === 'number')
    return Number.isInteger(value) ? { name, type: AttributeType.INT, i: value } : { name, type: AttributeType.FLOAT, f: value };
  if (Array.isArray(value)) return { name, type: AttributeType.INTS, ints: [...value] };
  if ('f' in value) return { name, type: AttributeType.FLOAT, f: value.f };
  if ('floats' in value) return { name, type: AttributeType.FLOATS, floats: [...value.floats] };
  const t = (value as { tensor: { dtype: OnnxDtype; dims: readonly number[]; data: InitializerData } }).tensor;
  return { name, type: AttributeType.TENSOR, t: { dataType: ONNX_DTYPE[t.dtype], dims: [...t.dims], rawData: rawBytes(t.data) } };
}

function dimProto(d: Dim): onnxProto.onnx.TensorShapeProto.IDimension {
  return typeof d === 'number' ? { dimValue: d } : { dimParam: d };
}

function valueInfoProto(v: ValueInfo): onnxProto.onnx.IValueInfoProto {
  return { name: v.name, type: { tensorType: { elemType: ONNX_DTYPE[v.dtype], shape: { dim: v.dims.map(dimProto) } } } };
}

/** Where {@link toModelProto} puts initializer bytes: inline, or through `place` (which returns the file offset). */
interface ExternalPlacement {
  location: string;
  /** Tensors smaller than this stay inline (shape constants), as onnx's own `save_model` does. */
  minBytes: number;
  place(bytes: Uint8Array): number;
}

function tensorProto(init: Initializer, external?: ExternalPlacement): onnxProto.onnx.ITensorProto {
  const base = { name: init.name, dataType: ONNX_DTYPE[init.dtype], dims: [...init.dims] };
  // A lazy initializer is loaded here and, when it goes to external data, dropped once written: only its
  // location/offset/length stay in the proto, so at most one weight's values are alive at a time.
  const bytes = rawBytes(initializerValues(init));
  if (!external || bytes.byteLength < external.minBytes) return { ...base, rawData: bytes };
  const offset = external.place(bytes);
  return {
    ...base,
    dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
    externalData: [
      { key: 'location', value: external.location },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(bytes.byteLength) },
    ],
  };
}

/** The ModelProto of a built graph (opset imports from the domains its nodes use). */
export function toModelProto(g: GraphBuilder, external?: ExternalPlacement): ModelProto {
  return {
    irVersion: IR_VERSION,
    producerName: 'bvllm',
    opsetImport: [...g.opsetImports()].map(([domain, version]) => ({ domain, version })),
    graph: {
      name: g.name,
      input: g.inputs.map(valueInfoProto),
      output: g.outputs.map(valueInfoProto),
      initializer: [...g.initializers.values()].map((init) => tensorProto(init, external)),
      node: g.nodes.map((n) => ({
        name: n.name,
        opType: n.opType,
        domain: n.domain,
        input: [...n.inputs],
        output: [...n.outputs],
        attribute: Object.entries(n.attributes).map(([k, v]) => attributeProto(k, v)),
      })),
    },
  };
}

/** The model as one protobuf message with every initializer inline, lazy ones loaded (models under 2 GiB). */
export function encodeModel(g: GraphBuilder): Uint8Array {
  return onnx.ModelProto.encode(toModelProto(g)).finish();
}

export function decodeModel(bytes: Uint8Array): ModelProto {
  return onnx.ModelProto.decode(bytes);
}

export interface WriteModelOptions {
  /** Total initializer bytes above which weights go to `<file>.data` (default {@link DEFAULT_EXTERNAL_DATA_THRESHOLD}). */
  externalDataThreshold?: number;
  /** With external data, initializers below this many bytes stay inline (default 1024). */
  externalMinBytes?: number;
}

export interface WrittenModel {
  path: string;
  /** The external data file, when one was written. */
  dataPath?: string;
  bytes: number;
}

/**
 * Writes the model to `path` (atomically: temporary names, then renames). Large models, and any model with a lazy
 * initializer, stream each initializer into `<path>.data` (a lazy one is loaded, written and dropped before the
 * next) and keep only its `location`/`offset`/`length` in the proto, which onnxruntime resolves relative to the
 * model file.
 */
export function writeModel(g: GraphBuilder, path: string, options: WriteModelOptions = {}): WrittenModel {
  const threshold = options.externalDataThreshold ?? DEFAULT_EXTERNAL_DATA_THRESHOLD;
  const inits = [...g.initializers.values()];
  const total = inits.reduce((n, init) => n + init.byteLength, 0);
  const temp = `${path}.${process.pid}.tmp`;
  // A graph with lazy weights always streams them to external data: inline, they would all sit in the proto at once.
  if (total <= threshold && !inits.some((init) => init.load)) {
    const bytes = encodeModel(g);
    writeBytes(temp, bytes);
    renameSync(temp, path);
    return { path, bytes: bytes.byteLength };
  }
  const dataPath = `${path}.data`;
  const dataTemp = `${dataPath}.${process.pid}.tmp`;
  const fd = openSync(dataTemp, 'w');
  let written = 0;
  let proto: Uint8Array;
  try {
    const padding = new Uint8Array(EXTERNAL_ALIGNMENT);
    proto = onnx.ModelProto.encode(
      toModelProto(g, {
        location: basename(dataPath),
        minBytes: options.externalMinBytes ?? 1024,
        place(bytes) {
          const pad = (EXTERNAL_ALIGNMENT - (written % EXTERNAL_ALIGNMENT)) % EXTERNAL_ALIGNMENT;
          if (pad) written += writeSync(fd, padding, 0, pad);
          const offset = written;
          writeAll(fd, bytes);
          written += bytes.byteLength;
          return offset;
        },
      }),
    ).finish();
  } finally {
    closeSync(fd);
  }
  writeBytes(temp, proto);
  renameSync(dataTemp, dataPath);
  renameSync(temp, path);
  return { path, dataPath, bytes: proto.byteLength + written };
}

function writeBytes(path: string, bytes: Uint8Array): void {
  const fd = openSync(path, 'w');
  try {
    writeAll(fd, bytes);
  } finally {
    closeSync(fd);
  }
}

/** Node refuses one write over 2 GiB − 1, and Qwen2-7B's float32 embedding table is 2.18 GB: write in 1 GiB pieces. */
const WRITE_CHUNK = 1024 ** 3;

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.byteLength; ) done += writeSync(fd, bytes, done, Math.min(WRITE_CHUNK, bytes.byteLength - done));
}
