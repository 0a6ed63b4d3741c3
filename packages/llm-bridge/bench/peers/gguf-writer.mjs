// A small GGUF (version 3) writer for the bench: metadata, then tensors in F32, Q8_0 or Q4_0, each loaded, encoded
// and written one at a time. Layout (ggml docs/gguf.md): header (magic "GGUF", version, tensor count, metadata count),
// metadata key/values, tensor infos (name, dims innermost first, ggml type, offset into the data section), padding to
// `general.alignment`, then the data section with every tensor aligned. All little-endian.
//
// Block formats (ggml-common.h, quantize_row_*_ref in ggml-quants.c), 32 consecutive values of a row per block:
//   Q8_0  34 bytes: f16 d = absmax / 127, then 32 int8 round(x / d)
//   Q4_0  18 bytes: f16 d = (signed value of largest magnitude) / −8, then 16 bytes: byte j holds value j in its low
//         nibble and value j + 16 in its high nibble, each min(15, trunc(x / d + 8.5))
import { closeSync, openSync, renameSync, writeSync } from 'node:fs';
import { toFloat16 } from '@bvllm/onnx';

export const GGML_TYPE = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 8 };
const BLOCK = 32;
const BLOCK_BYTES = { Q8_0: 2 + BLOCK, Q4_0: 2 + BLOCK / 2 };
/** `general.file_type` (llama.h `llama_ftype`) of a file whose matrices are all of one type. */
export const LLAMA_FTYPE = { F32: 0, Q4_0: 2, Q8_0: 7 };

const VALUE_TYPE = { u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12 };

/** Bytes a tensor of `count` values takes in `type`. */
export function tensorBytes(type, count) {
  if (type === 'F32') return count * 4;
  if (count % BLOCK !== 0) throw new Error(`${type}: ${count} values are not whole blocks of ${BLOCK}`);
  return (count / BLOCK) * BLOCK_BYTES[type];
}

/** Q8_0 blocks of `values` (a multiple of 32 long). */
export function quantizeQ8_0(values) {
  const blocks = values.length / BLOCK;
  const out = new Uint8Array(blocks * BLOCK_BYTES.Q8_0);
  const scales = new Float32Array(blocks);
  const codes = new Int8Array(out.buffer);
  for (let b = 0; b < blocks; b++) {
    let amax = 0;
    for (let i = b * BLOCK; i < (b + 1) * BLOCK; i++) amax = Math.max(amax, Math.abs(values[i]));
    const d = amax / 127;
    const id = d ? 1 / d : 0;
    scales[b] = d;
    const base = b * BLOCK_BYTES.Q8_0 + 2;
    // C's roundf: halves away from zero.
    for (let i = 0; i < BLOCK; i++) {
      const x = values[b * BLOCK + i] * id;
      codes[base + i] = Math.sign(x) * Math.round(Math.abs(x));
    }
  }
  writeHalfScales(out, scales, BLOCK_BYTES.Q8_0);
  return out;
}

/** Q4_0 blocks of `values` (a multiple of 32 long). */
export function quantizeQ4_0(values) {
  const blocks = values.length / BLOCK;
  const out = new Uint8Array(blocks * BLOCK_BYTES.Q4_0);
  const scales = new Float32Array(blocks);
  for (let b = 0; b < blocks; b++) {
    const start = b * BLOCK;
    let amax = 0;
    let max = 0;
    for (let i = start; i < start + BLOCK; i++)
      if (Math.abs(values[i]) > amax) {
        amax = Math.abs(values[i]);
        max = values[i];
      }
    const d = max / -8;
    const id = d ? 1 / d : 0;
    scales[b] = d;
    const base = b * BLOCK_BYTES.Q4_0 + 2;
    for (let j = 0; j < BLOCK / 2; j++) {
      const lo = Math.min(15, Math.trunc(values[start + j] * id + 8.5));
      const hi = Math.min(15, Math.trunc(values[start + j + BLOCK / 2] * id + 8.5));
      out[base + j] = lo | (hi << 4);
    }
  }
  writeHalfScales(out, scales, BLOCK_BYTES.Q4_0);
  return out;
}

function writeHalfScales(out, scales, stride) {
  const half = toFloat16(scales);
  for (let b = 0; b < half.length; b++) {
    out[b * stride] = half[b] & 0xff;
    out[b * stride + 1] = half[b] >> 8;
  }
}

/** Little-endian byte chunks, appended. */
class Bytes {
  chunks = [];
  length = 0;
  push(buf) {
    this.chunks.push(buf);
    this.length += buf.length;
  }
  u32(v) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.push(b);
  }
  i32(v) {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    this.push(b);
  }
  u64(v) {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  f32(v) {
    const b = Buffer.alloc(4);
    b.writeFloatLE(v);
    this.push(b);
  }
  string(s) {
    const bytes = Buffer.from(s, 'utf8');
    this.u64(bytes.length);
    this.push(bytes);
  }
  scalar(type, v) {
    if (type === 'u32') this.u32(v);
    else if (type === 'i32') this.i32(v);
    else if (type === 'f32') this.f32(v);
    else if (type === 'u64') this.u64(v);
    else if (type === 'bool') this.push(Buffer.from([v ? 1 : 0]));
    else if (type === 'string') this.string(v);
    else throw new Error(`gguf: metadata type ${type} is not written here`);
  }
}

/**
 * Writes a GGUF file. `metadata`: `[key, type, value]` with type `u32`, `i32`, `f32`, `u64`, `bool`, `string`, or an
 * array type written `string[]` / `i32[]` / … (value an array). `tensors`: `{ name, shape, type, load }` with `shape`
 * in row-major order, outermost first (the HF `[out, in]`; GGUF stores it reversed), `type` `F32`, `Q8_0` or `Q4_0`,
 * and `load()` returning the float32 values. Returns `{ path, bytes, tensorBytes }`.
 */
export function writeGguf(path, { metadata, tensors, alignment = 32 }) {
  const header = new Bytes();
  header.push(Buffer.from('GGUF', 'latin1'));
  header.u32(3);
  header.u64(tensors.length);
  const kvs = [...metadata, ['general.alignment', 'u32', alignment]];
  header.u64(kvs.length);
  for (const [key, type, value] of kvs) {
    header.string(key);
    if (type.endsWith('[]')) {
      const elem = type.slice(0, -2);
      header.u32(VALUE_TYPE.array);
      header.u32(VALUE_TYPE[elem]);
      header.u64(value.length);
      for (const v of value) header.scalar(elem, v);
    } else {
      header.u32(VALUE_TYPE[type]);
      header.scalar(type, value);
    }
  }
  const align = (n) => Math.ceil(n / alignment) * alignment;
  let offset = 0;
  const placed = tensors.map((t) => {
    const count = t.shape.reduce((a, b) => a * b, 1);
    const bytes = tensorBytes(t.type, count);
    const at = offset;
    offset = align(offset + bytes);
    header.string(t.name);
    header.u32(t.shape.length);
    for (const d of [...t.shape].reverse()) header.u64(d);
    header.u32(GGML_TYPE[t.type]);
    header.u64(at);
    return { ...t, count, bytes, at };
  });
  const temp = `${path}.${process.pid}.tmp`;
  const fd = openSync(temp, 'w');
  let written = 0;
  const write = (buf) => {
    for (let done = 0; done < buf.length; ) done += writeSync(fd, buf, done, Math.min(1 << 30, buf.length - done));
    written += buf.length;
  };
  try {
    for (const chunk of header.chunks) write(chunk);
    write(Buffer.alloc(align(written) - written));
    const dataStart = written;
    for (const t of placed) {
      write(Buffer.alloc(dataStart + t.at - written));
      const values = t.load();
      if (values.length !== t.count) throw new Error(`gguf tensor ${t.name}: load() gave ${values.length} values for shape [${t.shape}]`);
      const encoded = t.type === 'F32' ? values : t.type === 'Q8_0' ? quantizeQ8_0(values) : quantizeQ4_0(values);
      write(Buffer.from(encoded.buffer, encoded.byteOffset, encoded.byteLength));
    }
  } finally {
    closeSync(fd);
  }
  renameSync(temp, path);
  return { path, bytes: written, tensorBytes: placed.reduce((n, t) => n + t.bytes, 0) };
}
