/**
 * An on-disk cache of encoder outputs, as B-VLLM precomputes EVA features for long videos (spec §3). One entry is
 * `<key>.safetensors` (`cls`, `patches`) plus `<key>.json` (what produced it, timestamps, the safetensors file's
 * SHA-256). The key hashes the video's content, the encoder's identity (config + every weight) and the sampling,
 * preprocessing and output settings, so any change gives a new key. The JSON is written last and is the commit
 * marker; an entry that is incomplete, corrupt or does not match its key is deleted and recomputed, never used.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SafetensorsFile, tf, writeSafetensors, type FrameFeatures, parseConfig } from '@bvllm/core';
import { isImageFile } from './decode.js';
import { VideoDecodeError } from './errors.js';
import { samplingOptionsSchema } from './sampling.js';
import type { EncodeVideoOptions, FrameEncoder } from './vision-encoder.js';

const FORMAT = 'bvllm-frame-features/1';

export interface CacheEntryMeta {
  format: string;
  key: string;
  /** The key's inputs, stored so a collision or a hand-edited file is caught. */
  parts: Record<string, unknown>;
  timestampsSec: number[];
  /** [T, N, Cv]. */
  shape: number[];
  safetensorsSha256: string;
}

/** SHA-256 of a file's bytes, or of a frame folder's sorted image names and bytes. */
export async function contentHash(path: string): Promise<string> {
  if (!existsSync(path)) throw new VideoDecodeError(path, 'file does not exist');
  const hash = createHash('sha256');
  const files = statSync(path).isDirectory() ? readdirSync(path).filter(isImageFile).sort().map((f) => join(path, f)) : [path];
  for (const file of files) {
    hash.update(`${file.slice(path.length)}\0`);
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

const sha256 = (bytes: Uint8Array | string) => createHash('sha256').update(bytes).digest('hex');
/** JSON with sorted keys, so equal settings hash equally whatever order they were written in. */
const canonical = (value: unknown): string =>
  JSON.stringify(value, (_, v) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1))) : v));

export class FeatureCache {
  /** `floatDtype` F16 halves the disk size, as the reference's fp16 `.npy` features (spec §3); F32 is exact. */
  constructor(
    readonly dir: string,
    private readonly options: { floatDtype?: 'F32' | 'F16' } = {},
  ) {
    mkdirSync(dir, { recursive: true });
  }

  /** Features of `path` from the cache, or computed with `encoder` and stored. The caller owns the tensors. */
  async getOrCompute(path: string, encoder: FrameEncoder, options: EncodeVideoOptions = {}): Promise<{ features: FrameFeatures; key: string; hit: boolean }> {
    const parts = {
      video: await contentHash(path),
      encoder: encoder.identity(),
      sampling: parseConfig(samplingOptionsSchema, options.sampling ?? {}, 'sampling options'),
      preprocess: encoder.preprocessOptions(options.preprocess),
      output: options.output ?? 'lastBlock',
      split: options.split ?? 'token0',
      floatDtype: this.options.floatDtype ?? 'F32',
    };
    const key = sha256(canonical(parts));
    const cached = this.read(key, parts);
    if (cached) return { features: cached, key, hit: true };
    const features = await encoder.encodeVideo(path, options);
    this.write(key, parts, features);
    return { features, key, hit: false };
  }

  private paths(key: string) {
    return { tensors: join(this.dir, `${key}.safetensors`), meta: join(this.dir, `${key}.json`) };
  }

  /** A valid entry's features, else undefined (and an invalid entry is removed). */
  read(key: string, parts: Record<string, unknown>): FrameFeatures | undefined {
    const p = this.paths(key);
    if (!existsSync(p.meta)) {
      rmSync(p.tensors, { force: true });
      return undefined;
    }
    let file: SafetensorsFile | undefined;
    try {
      const meta = JSON.parse(readFileSync(p.meta, 'utf8')) as CacheEntryMeta;
      if (meta.format !== FORMAT || meta.key !== key || canonical(meta.parts) !== canonical(parts)) throw new Error('metadata does not match the key');
      if (sha256(readFileSync(p.tensors)) !== meta.safetensorsSha256) throw new Error('tensor file checksum mismatch');
      file = SafetensorsFile.open(p.tensors);
      const cls = file.readTensor('cls');
      const patches = file.readTensor('patches');
      const [t, , c] = meta.shape;
      if (!tf.util.arraysEqual(patches.shape, meta.shape) || !tf.util.arraysEqual(cls.shape, [t, c]) || meta.timestampsSec.length !== t) {
        tf.dispose([cls, patches]);
        throw new Error('tensor shapes do not match the metadata');
      }
      return { cls: cls as tf.Tensor2D, patches: patches as tf.Tensor3D, timestampsSec: meta.timestampsSec };
    } catch {
      this.remove(key);
      return undefined;
    } finally {
      file?.close();
    }
  }

  write(key: string, parts: Record<string, unknown>, features: FrameFeatures): void {
    const p = this.paths(key);
    writeSafetensors(p.tensors, new Map<string, tf.Tensor>([['cls', features.cls], ['patches', features.patches]]), {
      floatDtype: this.options.floatDtype ?? 'F32',
      metadata: { format: FORMAT, key },
    });
    const meta: CacheEntryMeta = {
      format: FORMAT,
      key,
      parts,
      timestampsSec: [...features.timestampsSec],
      shape: features.patches.shape,
      safetensorsSha256: sha256(readFileSync(p.tensors)),
    };
    const tmp = `${p.meta}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify(meta, null, 1));
    renameSync(tmp, p.meta);
  }

  remove(key: string): void {
    const p = this.paths(key);
    rmSync(p.meta, { force: true });
    rmSync(p.tensors, { force: true });
  }
}
