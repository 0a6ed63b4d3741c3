/**
 * A safetensors writer that never holds more than one tensor: the header is computed from shapes and dtypes alone,
 * then each tensor is read, encoded, written and dropped. This is how `bvllm convert` writes a 7B checkpoint
 * (15 GB in BF16) in the memory of its largest tensor.
 */
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { InvalidArgumentError } from '../errors.js';
import { WeightSourceError } from '../weight-source-error.js';
import { dtypeBytes, encodeFloats } from './dtypes.js';

/** One tensor to write: its key, shape, stored dtype, and how to get its float32 values (`[numel]`, row-major). */
export interface StreamedTensor {
  key: string;
  shape: number[];
  dtype: 'F32' | 'F16' | 'BF16';
  read(): Float32Array;
}

export interface StreamedWriteOptions {
  /** The header's `__metadata__` (string values only, as the format requires). */
  metadata?: Record<string, string>;
  /** Called after each tensor is written, `done` of `total`, in file order. */
  onTensor?(key: string, done: number, total: number): void;
}

/** Largest single write (Node's writeSync caps one call near 2 GiB; a 7B embedding table in F32 is larger). */
const CHUNK_BYTES = 1 << 30;

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, Math.min(CHUNK_BYTES, bytes.length - done));
}

/**
 * Writes `entries` to `path` as safetensors, atomically (temp file, then rename). Tensors are laid out widest
 * dtype first, then by key (the reference writer's order, so every tensor starts aligned to its dtype; with one
 * dtype this is key order, as {@link serializeSafetensors} writes, and the bytes are identical). The JSON header is
 * padded with spaces to a multiple of 8 bytes. F16 and BF16 round to nearest even.
 */
export function writeSafetensorsStreamed(path: string, entries: readonly StreamedTensor[], options: StreamedWriteOptions = {}): void {
  const seen = new Set<string>();
  for (const e of entries) {
    if (e.key === '__metadata__') throw new InvalidArgumentError('entries', '"__metadata__" is reserved for the header metadata');
    if (seen.has(e.key)) throw new InvalidArgumentError('entries', `key "${e.key}" appears twice`);
    seen.add(e.key);
    if (!['F32', 'F16', 'BF16'].includes(e.dtype))
      throw new InvalidArgumentError('entries', `tensor "${e.key}" has dtype ${String(e.dtype)}; only F32, F16 and BF16 are written`);
    if (!e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new InvalidArgumentError('entries', `tensor "${e.key}" has an invalid shape [${e.shape.join(', ')}]`);
  }
  const order = [...entries].sort((a, b) => dtypeBytes[b.dtype] - dtypeBytes[a.dtype] || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (options.metadata) header.__metadata__ = options.metadata;
  let offset = 0;
  for (const e of order) {
    const bytes = e.shape.reduce((a, b) => a * b, 1) * dtypeBytes[e.dtype];
    header[e.key] = { dtype: e.dtype, shape: e.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const prefix = Buffer.alloc(8 + headerBytes.length);
  prefix.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(prefix, 8);

  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    writeAll(fd, prefix);
    order.forEach((e, i) => {
      const numel = e.shape.reduce((a, b) => a * b, 1);
      const values = e.read();
      if (values.length !== numel)
        throw new WeightSourceError(path, 'wrong-length', [e.key], `tensor "${e.key}" [${e.shape.join(', ')}] needs ${numel} values, read() gave ${values.length}`);
      writeAll(fd, encodeFloats(values, e.dtype));
      options.onTensor?.(e.key, i + 1, order.length);
    });
    // On disk before the rename, so a crash leaves the old file or the whole new one, never a torn one.
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    unlinkSync(tmp);
    throw error;
  }
  closeSync(fd);
  renameSync(tmp, path);
}
