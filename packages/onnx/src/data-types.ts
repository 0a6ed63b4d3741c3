/**
 * The tensor element types the builder writes, by their ONNX `TensorProto.DataType` number, with the typed array
 * that holds each one's values.
 */
export type OnnxDtype = 'float32' | 'uint8' | 'int8' | 'int32' | 'int64' | 'bool' | 'float16';

export const ONNX_DTYPE: Readonly<Record<OnnxDtype, number>> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
};

/** Bytes per element of each dtype. */
export const DTYPE_BYTES: Readonly<Record<OnnxDtype, number>> = { float32: 4, uint8: 1, int8: 1, int32: 4, int64: 8, bool: 1, float16: 2 };

const BY_NUMBER = new Map(Object.entries(ONNX_DTYPE).map(([name, n]) => [n, name as OnnxDtype]));

/** The dtype name of an ONNX `DataType` number, or undefined for one the builder does not write. */
export function dtypeOfNumber(n: number): OnnxDtype | undefined {
  return BY_NUMBER.get(n);
}

/** Values an initializer can be built from; the array type fixes the dtype (Uint16Array holds float16 bits). */
export type InitializerData = Float32Array | Int8Array | Uint8Array | Int32Array | BigInt64Array | Uint16Array;

export function dtypeOfArray(data: InitializerData): OnnxDtype {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Int8Array) return 'int8';
  if (data instanceof Uint8Array) return 'uint8';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof BigInt64Array) return 'int64';
  return 'float16';
}

/** The little-endian bytes of `data`, as ONNX `raw_data` stores them (a view, no copy). */
export function rawBytes(data: InitializerData): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
