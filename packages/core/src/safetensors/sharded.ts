import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as tf from '@tensorflow/tfjs-core';
import { SafetensorsFormatError } from '../errors.js';
import { findDuplicateKey } from '../json-duplicates.js';
import { irregularFile } from '../regular-file.js';
import { WeightSourceError } from '../weight-source-error.js';
import type { WeightSource } from '../weight-source.js';
import { SafetensorsFile, type TensorInfo } from './safetensors-file.js';

/**
 * The tensors of a Hugging Face model folder: `model.safetensors`, or shards listed by
 * `model.safetensors.index.json` (`weight_map`: key → shard file). Shards are opened lazily and one tensor is read
 * at a time, so loading a model never holds more than one tensor's bytes outside tfjs. As a {@link WeightSource},
 * `read` gives float32 values (F32 / F16 / BF16 / F64 widened or rounded) and `origin` the shard file.
 */
export class TensorSource implements WeightSource {
  private readonly open = new Map<string, SafetensorsFile>();

  private constructor(
    readonly dir: string,
    private readonly fileOf: ReadonlyMap<string, string>,
  ) {}

  static fromDir(dir: string, fileName = 'model.safetensors'): TensorSource {
    const indexPath = join(dir, `${fileName}.index.json`);
    if (existsSync(indexPath)) {
      const kind = irregularFile(indexPath);
      if (kind) throw new SafetensorsFormatError(indexPath, `not a regular file (${kind})`);
      const text = readFileSync(indexPath, 'utf8');
      let index: unknown;
      try {
        index = JSON.parse(text);
      } catch (cause) {
        throw new SafetensorsFormatError(indexPath, `index is not valid JSON (${(cause as Error).message})`);
      }
      // A key listed twice in weight_map would silently point at the last shard named.
      const duplicate = findDuplicateKey(text);
      if (duplicate) throw new SafetensorsFormatError(indexPath, `index repeats the key ${duplicate.map((k) => JSON.stringify(k)).join(' → ')}`);
      const map = (index as { weight_map?: unknown }).weight_map;
      if (typeof map !== 'object' || map === null) throw new SafetensorsFormatError(indexPath, 'index has no weight_map object');
      const fileOf = new Map<string, string>();
      for (const [k, v] of Object.entries(map as Record<string, unknown>)) {
        if (typeof v !== 'string' || v.includes('/') || v.includes('\\')) throw new SafetensorsFormatError(indexPath, `weight_map["${k}"] is not a shard file name`);
        fileOf.set(k, join(dir, v));
      }
      return new TensorSource(dir, fileOf);
    }
    const single = join(dir, fileName);
    const file = SafetensorsFile.open(single);
    const source = new TensorSource(dir, new Map(file.keys().map((k) => [k, single])));
    source.open.set(single, file);
    return source;
  }

  keys(): string[] {
    return [...this.fileOf.keys()];
  }

  has(key: string): boolean {
    return this.fileOf.has(key);
  }

  private file(key: string): SafetensorsFile {
    const path = this.fileOf.get(key);
    if (!path) throw new WeightSourceError(this.dir, 'missing-key', [key], `no tensor named "${key}"`);
    let file = this.open.get(path);
    if (!file) {
      file = SafetensorsFile.open(path);
      this.open.set(path, file);
    }
    if (!file.tensors.has(key)) throw new SafetensorsFormatError(path, `index lists "${key}" in this shard but the shard lacks it`);
    return file;
  }

  info(key: string): TensorInfo {
    return this.file(key).info(key);
  }

  /** One float tensor as float32, `[numel]` row-major in `info(key).shape`; an integer tensor is a WeightSourceError. */
  read(key: string): Float32Array {
    return this.file(key).readFloat32(key);
  }

  /** One tensor as a tfjs tensor the caller owns (integer dtypes as int32). */
  readTensor(key: string): tf.Tensor {
    return this.file(key).readTensor(key);
  }

  /** The shard file that holds `key`. */
  origin(key: string): string {
    const path = this.fileOf.get(key);
    if (!path) throw new WeightSourceError(this.dir, 'missing-key', [key], `no tensor named "${key}"`);
    return path;
  }

  /** Every tensor (or those `filter` keeps), read one by one. The caller owns the tensors. */
  readAll(filter: (key: string) => boolean = () => true): Map<string, tf.Tensor> {
    return new Map(this.keys().filter(filter).map((k) => [k, this.readTensor(k)]));
  }

  close(): void {
    for (const f of this.open.values()) f.close();
    this.open.clear();
  }
}
