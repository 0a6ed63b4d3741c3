import { renameSync, writeFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { dtypeBytes, encodeFloats, f32ToBf16, f32ToF16, type SafetensorsDtype } from './dtypes.js';

/** A tensor to write: a tfjs tensor, or raw values with their shape (an Int32Array is written as integers). */
export type WritableTensor = tf.Tensor | { values: ArrayLike<number>; shape: number[] };

/** Float tensors are stored as `floatDtype` (F32 by default); integer ones as `intDtype` (I64, as PyTorch stores indices). */
export interface WriteOptions {
  floatDtype?: Extract<SafetensorsDtype, 'F32' | 'F16' | 'BF16'>;
  intDtype?: Extract<SafetensorsDtype, 'I64' | 'I32'>;
  metadata?: Record<string, string>;
}

function encode(values: ArrayLike<number>, dtype: SafetensorsDtype): Uint8Array {
  if (values instanceof Float32Array && (dtype === 'F32' || dtype === 'F16' || dtype === 'BF16')) return encodeFloats(values, dtype);
  const n = values.length;
  const bytes = new Uint8Array(n * dtypeBytes[dtype]);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < n; i++) {
    const v = values[i];
    switch (dtype) {
      case 'F32':
        view.setFloat32(i * 4, v, true);
        break;
      case 'F16':
        view.setUint16(i * 2, f32ToF16(v), true);
        break;
      case 'BF16':
        view.setUint16(i * 2, f32ToBf16(v), true);
        break;
      case 'I64':
        view.setBigInt64(i * 8, BigInt(Math.trunc(v)), true);
        break;
      case 'I32':
        view.setInt32(i * 4, v, true);
        break;
      default:
        throw new Error(`writing ${dtype} is not supported`);
    }
  }
  return bytes;
}

/** Serialises tensors to safetensors bytes: 8-byte header length, JSON header padded with spaces to 8 bytes, data. */
export function serializeSafetensors(tensors: ReadonlyMap<string, WritableTensor>, options: WriteOptions = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (options.metadata) header.__metadata__ = options.metadata;
  const chunks: Uint8Array[] = [];
  let offset = 0;
  // Sorted keys, as the reference writer does, so equal tensors give byte-identical files.
  for (const name of [...tensors.keys()].sort()) {
    const t = tensors.get(name)!;
    const isTensor = t instanceof tf.Tensor;
    const values = isTensor ? t.dataSync() : t.values;
    const isInt = isTensor ? t.dtype === 'int32' || t.dtype === 'bool' : t.values instanceof Int32Array;
    const dtype: SafetensorsDtype = isInt ? (options.intDtype ?? 'I64') : (options.floatDtype ?? 'F32');
    const bytes = encode(values, dtype);
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let cursor = 8 + headerBytes.length;
  for (const c of chunks) {
    out.set(c, cursor);
    cursor += c.length;
  }
  return out;
}

/** Writes atomically (temp file, then rename), so a crash never leaves a half-written checkpoint under `path`. */
export function writeSafetensors(path: string, tensors: ReadonlyMap<string, WritableTensor>, options: WriteOptions = {}): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, serializeSafetensors(tensors, options));
  renameSync(tmp, path);
}
