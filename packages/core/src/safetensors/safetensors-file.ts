/**
 * A bounds-checked safetensors reader. The header is read and validated on its own (length, JSON, dtypes, shapes,
 * offsets that must tile the data region exactly), so a hostile file is refused before any tensor-sized allocation,
 * and one tensor is read with a positioned read, never the whole file.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { SafetensorsFormatError } from '../errors.js';
import { findDuplicateKey } from '../json-duplicates.js';
import { fileKind } from '../regular-file.js';
import { WeightSourceError } from '../weight-source-error.js';
import { decodeFloats, dtypeBytes, isFloatDtype, isSafetensorsDtype, type SafetensorsDtype } from './dtypes.js';

/** The upstream Rust implementation refuses headers over 100 MB; so do we. */
export const MAX_HEADER_BYTES = 100_000_000;

/** Largest positioned read issued at once (Node's readSync caps one call near 2 GiB). */
const CHUNK_BYTES = 1 << 30;

export interface TensorInfo {
  dtype: SafetensorsDtype;
  shape: number[];
  /** Byte range inside the data region (after the header). */
  begin: number;
  end: number;
}

/** Validates a header object against a data region of `dataBytes`; throws with the first problem found. */
export function validateHeader(file: string, header: unknown, dataBytes: number): { tensors: Map<string, TensorInfo>; metadata: Record<string, string> } {
  const fail = (reason: string): never => {
    throw new SafetensorsFormatError(file, reason);
  };
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail('__metadata__ is not an object');
      for (const [k, v] of Object.entries(raw as Record<string, unknown>))
        if (typeof v !== 'string') fail(`__metadata__.${k} is not a string`);
      metadata = raw as Record<string, string>;
      continue;
    }
    if (typeof raw !== 'object' || raw === null) fail(`tensor "${name}" has no entry object`);
    const entry = raw as Record<string, unknown>;
    if (!isSafetensorsDtype(entry.dtype)) fail(`tensor "${name}" has unsupported dtype ${JSON.stringify(entry.dtype)}`);
    const dtype = entry.dtype as SafetensorsDtype;
    const shape = entry.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      fail(`tensor "${name}" has an invalid shape ${JSON.stringify(shape)}`);
    const offsets = entry.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0))
      fail(`tensor "${name}" has invalid data_offsets ${JSON.stringify(offsets)}`);
    const [begin, end] = offsets as [number, number];
    const numel = (shape as number[]).reduce((a, b) => a * b, 1);
    if (!Number.isSafeInteger(numel * dtypeBytes[dtype])) fail(`tensor "${name}" is too large`);
    if (end < begin) fail(`tensor "${name}" ends (${end}) before it begins (${begin})`);
    if (end > dataBytes) fail(`tensor "${name}" ends at ${end}, past the data region of ${dataBytes} bytes (truncated file?)`);
    if (end - begin !== numel * dtypeBytes[dtype])
      fail(`tensor "${name}" spans ${end - begin} bytes but ${dtype} ${JSON.stringify(shape)} needs ${numel * dtypeBytes[dtype]}`);
    tensors.set(name, { dtype, shape: shape as number[], begin, end });
  }
  // Tensors must tile the data region without gaps or overlaps, as the reference implementation requires.
  const spans = [...tensors.entries()].sort((a, b) => a[1].begin - b[1].begin || a[1].end - b[1].end);
  let cursor = 0;
  for (const [name, info] of spans) {
    if (info.begin < cursor) fail(`tensor "${name}" overlaps the tensor before it (offset ${info.begin} < ${cursor})`);
    if (info.begin > cursor) fail(`gap in the data region before tensor "${name}" (offset ${info.begin}, expected ${cursor})`);
    cursor = info.end;
  }
  if (cursor !== dataBytes) fail(`data region is ${dataBytes} bytes but tensors cover ${cursor} (truncated or padded file)`);
  return { tensors, metadata };
}

/** Converts raw little-endian bytes to the values tfjs can hold: float32 for floats, int32 for integers. */
export function decodeTensorBytes(file: string, name: string, dtype: SafetensorsDtype, bytes: Uint8Array): Float32Array | Int32Array {
  if (isFloatDtype(dtype)) return decodeFloats(dtype, bytes);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.byteLength / dtypeBytes[dtype];
  switch (dtype) {
    case 'I64': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const v = view.getBigInt64(i * 8, true);
        if (v > 2147483647n || v < -2147483648n) throw new SafetensorsFormatError(file, `tensor "${name}" holds ${v}, outside int32 (tfjs has no int64)`);
        out[i] = Number(v);
      }
      return out;
    }
    case 'I32': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getInt32(i * 4, true);
      return out;
    }
    case 'U8':
    case 'BOOL':
      return Int32Array.from(bytes);
  }
}

/** Positioned reads from a file descriptor or a buffer, so both share one validating parser. */
interface ByteSource {
  readonly size: number;
  /** Fills `target` from `position`; returns the bytes read. */
  read(target: Uint8Array, position: number): number;
  close(): void;
}

/** An open safetensors file. Close it when done (or use {@link readSafetensors} for a one-shot read). */
export class SafetensorsFile {
  private constructor(
    readonly path: string,
    private source: ByteSource | undefined,
    private readonly dataStart: number,
    readonly tensors: ReadonlyMap<string, TensorInfo>,
    readonly metadata: Readonly<Record<string, string>>,
  ) {}

  /**
   * Opens a file on disk. Only a regular file is read: a FIFO would block the first read forever and a directory
   * or device has no header, so anything else is a SafetensorsFormatError before any read.
   */
  static open(path: string): SafetensorsFile {
    let fd: number;
    try {
      // O_NONBLOCK: opening a FIFO for reading otherwise waits for a writer, before fstat could refuse it.
      fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (cause) {
      throw new SafetensorsFormatError(path, `cannot open (${(cause as Error).message})`);
    }
    const stat = fstatSync(fd);
    if (!stat.isFile()) {
      closeSync(fd);
      throw new SafetensorsFormatError(path, `not a regular file (${fileKind(stat)})`);
    }
    const source: ByteSource = {
      size: stat.size,
      read: (target, position) => readSync(fd, target, 0, target.length, position),
      close: () => closeSync(fd),
    };
    return SafetensorsFile.fromSource(path, source);
  }

  /** Parses an in-memory file (a download, a fuzz case) with the same checks as {@link SafetensorsFile.open}. */
  static fromBytes(bytes: Uint8Array, name = '<bytes>'): SafetensorsFile {
    const source: ByteSource = {
      size: bytes.byteLength,
      read: (target, position) => {
        const chunk = bytes.subarray(position, position + target.length);
        target.set(chunk);
        return chunk.length;
      },
      close: () => {},
    };
    return SafetensorsFile.fromSource(name, source);
  }

  private static fromSource(path: string, source: ByteSource): SafetensorsFile {
    try {
      const size = source.size;
      if (size < 8) throw new SafetensorsFormatError(path, `file is ${size} bytes, shorter than the 8-byte header length`);
      const lenBytes = Buffer.alloc(8);
      source.read(lenBytes, 0);
      const headerLength = lenBytes.readBigUInt64LE(0);
      if (headerLength > BigInt(MAX_HEADER_BYTES)) throw new SafetensorsFormatError(path, `header length ${headerLength} exceeds ${MAX_HEADER_BYTES} bytes`);
      if (headerLength > BigInt(size - 8)) throw new SafetensorsFormatError(path, `header length ${headerLength} exceeds the file size ${size} (truncated file?)`);
      const n = Number(headerLength);
      const headerBytes = Buffer.alloc(n);
      source.read(headerBytes, 8);
      const text = headerBytes.toString('utf8');
      let header: unknown;
      try {
        header = JSON.parse(text);
      } catch (cause) {
        throw new SafetensorsFormatError(path, `header is not valid JSON (${(cause as Error).message})`);
      }
      // JSON.parse keeps the last of two equal keys, so a repeated tensor name would hide one entry silently.
      const duplicate = findDuplicateKey(text);
      if (duplicate) throw new SafetensorsFormatError(path, `header repeats the key ${duplicate.map((k) => JSON.stringify(k)).join(' → ')}`);
      const { tensors, metadata } = validateHeader(path, header, size - 8 - n);
      return new SafetensorsFile(path, source, 8 + n, tensors, metadata);
    } catch (error) {
      source.close();
      throw error;
    }
  }

  keys(): string[] {
    return [...this.tensors.keys()];
  }

  info(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (!info) throw new SafetensorsFormatError(this.path, `no tensor named "${name}"`);
    return info;
  }

  /** The raw little-endian bytes of one tensor. */
  readBytes(name: string): Uint8Array {
    const info = this.info(name);
    return this.readInto(name, new Uint8Array(info.end - info.begin));
  }

  /** Fills `target` (exactly the tensor's byte length) with one tensor's bytes. */
  private readInto(name: string, target: Uint8Array): Uint8Array {
    if (this.source === undefined) throw new SafetensorsFormatError(this.path, 'file is closed');
    const info = this.info(name);
    // readSync reads at most 2 GiB per call, and a 7B embedding table in F32 is larger: read in chunks.
    let done = 0;
    while (done < target.length) {
      const got = this.source.read(target.subarray(done, Math.min(target.length, done + CHUNK_BYTES)), this.dataStart + info.begin + done);
      if (got === 0) break;
      done += got;
    }
    if (done !== target.length) throw new SafetensorsFormatError(this.path, `short read of "${name}" (${done} of ${target.length} bytes)`);
    return target;
  }

  /**
   * One float tensor's values as float32, freshly allocated: F32 is read straight into the result, F16 / BF16 / F64
   * are decoded in bulk. An integer tensor is refused (a weight is a float), naming the key and its dtype.
   */
  readFloat32(name: string): Float32Array {
    const info = this.info(name);
    if (!isFloatDtype(info.dtype))
      throw new WeightSourceError(this.path, 'not-float', [name], `tensor "${name}" is ${info.dtype}, not a float weight (F32, F16, BF16 or F64)`);
    if (info.dtype !== 'F32') return decodeFloats(info.dtype, this.readBytes(name));
    const out = new Float32Array((info.end - info.begin) / 4);
    this.readInto(name, new Uint8Array(out.buffer));
    return out;
  }

  /** One tensor's values (float32 for float dtypes, int32 for integer ones). */
  readValues(name: string): Float32Array | Int32Array {
    return decodeTensorBytes(this.path, name, this.info(name).dtype, this.readBytes(name));
  }

  /** One tensor as a tfjs tensor the caller owns. */
  readTensor(name: string): tf.Tensor {
    const info = this.info(name);
    const values = this.readValues(name);
    return tf.tensor(values, info.shape, values instanceof Int32Array ? 'int32' : 'float32');
  }

  close(): void {
    this.source?.close();
    this.source = undefined;
  }
}

/** Reads every tensor of a file (optionally only those `filter` keeps) and closes it. */
export function readSafetensors(path: string, filter: (name: string) => boolean = () => true): Map<string, tf.Tensor> {
  const file = SafetensorsFile.open(path);
  try {
    return new Map(file.keys().filter(filter).map((k) => [k, file.readTensor(k)]));
  } finally {
    file.close();
  }
}
