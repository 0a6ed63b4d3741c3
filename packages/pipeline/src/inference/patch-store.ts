/**
 * Where a video's patch tokens `[T, N, Cv]` wait for frame selection (issue #18 item 4). Selection reads the [CLS]
 * token of every frame but patches only of the frames it weights, so patches need not stay in memory: a short
 * video's stay there (float32, exact), and past `memoryLimitBytes` they go to a file as float16 — the feature
 * cache's entry when one is given, else a temp file deleted on close. Reading frames back costs one positioned read
 * per run of consecutive frames, so memory holds at most the frames one read asks for.
 */
import { closeSync, existsSync, mkdtempSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError, f16ToF32, f32ToF16 } from '@bvllm/core';

/** Patches kept in memory up to this many bytes (float32) before they move to disk as float16. 64 MiB. */
export const DEFAULT_PATCH_MEMORY_BYTES = 64 * 1024 * 1024;

export interface PatchStore {
  /** T, frames appended so far. */
  readonly numFrames: number;
  /** N, patch tokens per frame. */
  readonly numPatches: number;
  /** Cv. */
  readonly width: number;
  /** Where the patches are: `memory` (float32) or `file` (float16 at `path`). */
  readonly location: 'memory' | 'file';
  readonly path?: string;
  /** Appends `[B, N, Cv]` row-major (B = length / (N·Cv)); values are copied. */
  append(patches: Float32Array): void;
  /** Frames `frames` (any order, repeats allowed) as `[frames.length, N, Cv]`, float32. */
  read(frames: readonly number[]): Float32Array;
  /** Frees memory; deletes a temp file (never a cache entry). */
  close(): void;
}

export interface PatchStoreOptions {
  numPatches: number;
  width: number;
  /** Float32 bytes kept in memory before spilling to a float16 file. Default {@link DEFAULT_PATCH_MEMORY_BYTES}. */
  memoryLimitBytes?: number;
  /**
   * Write to this file (the feature cache's entry) from the first frame, whatever the size; it stays after close.
   * Written to `<file>.tmp` and renamed by {@link FilePatches.commit}.
   */
  file?: string;
}

const toF16 = (values: Float32Array): Buffer => {
  const out = Buffer.allocUnsafe(values.length * 2);
  for (let i = 0; i < values.length; i++) out.writeUInt16LE(f32ToF16(values[i]), 2 * i);
  return out;
};

/** Float16 patches in a file, appended in order and read back by frame. */
export class FilePatches implements PatchStore {
  readonly location = 'file';
  private fd: number;
  private frames = 0;
  private readonly frameBytes: number;
  private writing: boolean;

  private constructor(
    readonly numPatches: number,
    readonly width: number,
    readonly path: string,
    private readonly temp: boolean,
    existingFrames?: number,
  ) {
    this.frameBytes = numPatches * width * 2;
    this.writing = existingFrames === undefined;
    // A cache entry is written beside its final name and renamed by commit(); a temp file is written in place.
    this.fd = openSync(this.writing ? this.writePath : path, this.writing ? 'w+' : 'r');
    if (existingFrames !== undefined) this.frames = existingFrames;
  }

  private get writePath(): string {
    return this.temp ? this.path : `${this.path}.tmp`;
  }

  /** A new file at `path` (a cache entry is written as `<path>.tmp` until {@link commit}); `temp` ones are deleted on close. */
  static create(path: string, numPatches: number, width: number, temp: boolean): FilePatches {
    return new FilePatches(numPatches, width, path, temp);
  }

  /** A committed file of `numFrames` frames (a feature-cache hit), read-only. */
  static open(path: string, numPatches: number, width: number, numFrames: number): FilePatches {
    return new FilePatches(numPatches, width, path, false, numFrames);
  }

  get numFrames(): number {
    return this.frames;
  }

  append(patches: Float32Array): void {
    if (!this.writing) throw new InvalidArgumentError('patches', 'this patch file is committed and read-only');
    const b = checkRows(patches, this.numPatches, this.width);
    writeSync(this.fd, toF16(patches), 0, b * this.frameBytes, this.frames * this.frameBytes);
    this.frames += b;
  }

  read(frames: readonly number[]): Float32Array {
    const per = this.numPatches * this.width;
    const out = new Float32Array(frames.length * per);
    const buffer = Buffer.allocUnsafe(this.frameBytes);
    frames.forEach((frame, i) => {
      checkFrame(frame, this.frames);
      readSync(this.fd, buffer, 0, this.frameBytes, frame * this.frameBytes);
      for (let j = 0; j < per; j++) out[i * per + j] = f16ToF32(buffer.readUInt16LE(2 * j));
    });
    return out;
  }

  /** Ends writing: the file moves to its final path (the cache entry is complete once its metadata follows). */
  commit(): void {
    if (!this.writing || this.temp) return;
    closeSync(this.fd);
    renameSync(`${this.path}.tmp`, this.path);
    this.fd = openSync(this.path, 'r');
    this.writing = false;
  }

  close(): void {
    if (this.fd < 0) return;
    closeSync(this.fd);
    this.fd = -1;
    if (this.writing || this.temp) rmSync(this.writePath, { force: true });
  }
}

/** Float32 patches in memory, in appended chunks (no copy of the whole on growth). */
class MemoryPatches implements PatchStore {
  readonly location = 'memory';
  readonly chunks: Float32Array[] = [];
  private frames = 0;

  constructor(
    readonly numPatches: number,
    readonly width: number,
  ) {}

  get numFrames(): number {
    return this.frames;
  }

  get bytes(): number {
    return this.frames * this.numPatches * this.width * 4;
  }

  append(patches: Float32Array): void {
    this.frames += checkRows(patches, this.numPatches, this.width);
    this.chunks.push(patches.slice());
  }

  read(frames: readonly number[]): Float32Array {
    const per = this.numPatches * this.width;
    const out = new Float32Array(frames.length * per);
    frames.forEach((frame, i) => {
      checkFrame(frame, this.frames);
      let offset = frame * per;
      for (const chunk of this.chunks) {
        if (offset < chunk.length) {
          out.set(chunk.subarray(offset, offset + per), i * per);
          return;
        }
        offset -= chunk.length;
      }
    });
    return out;
  }

  close(): void {
    this.chunks.length = 0;
  }
}

/** In memory until `memoryLimitBytes`, then (once, moving what it has) a temp float16 file. */
class SpillingPatches implements PatchStore {
  private store: MemoryPatches | FilePatches;
  /** The temp folder of the spilled file. */
  private dir?: string;

  constructor(
    readonly numPatches: number,
    readonly width: number,
    private readonly limit: number,
  ) {
    this.store = new MemoryPatches(numPatches, width);
  }

  get numFrames(): number {
    return this.store.numFrames;
  }

  get location(): 'memory' | 'file' {
    return this.store.location;
  }

  get path(): string | undefined {
    return this.store.location === 'file' ? this.store.path : undefined;
  }

  append(patches: Float32Array): void {
    this.store.append(patches);
    if (this.store instanceof MemoryPatches && this.store.bytes > this.limit) {
      const dir = mkdtempSync(join(tmpdir(), 'bvllm-patches-'));
      const file = FilePatches.create(join(dir, 'patches.f16'), this.numPatches, this.width, true);
      for (const chunk of this.store.chunks) file.append(chunk);
      this.store.close();
      this.store = file;
      this.dir = dir;
    }
  }

  read(frames: readonly number[]): Float32Array {
    return this.store.read(frames);
  }

  close(): void {
    this.store.close();
    if (this.dir && existsSync(this.dir)) rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A patch store for one video: a cache file (`options.file`) when given, else memory spilling to a temp float16
 * file past `memoryLimitBytes`.
 */
export function createPatchStore(options: PatchStoreOptions): PatchStore {
  if (options.file) return FilePatches.create(options.file, options.numPatches, options.width, false);
  return new SpillingPatches(options.numPatches, options.width, options.memoryLimitBytes ?? DEFAULT_PATCH_MEMORY_BYTES);
}

function checkRows(patches: Float32Array, n: number, c: number): number {
  const per = n * c;
  if (patches.length % per !== 0) throw new InvalidArgumentError('patches', `${patches.length} values are not whole frames of [${n}, ${c}]`);
  return patches.length / per;
}

function checkFrame(frame: number, total: number): void {
  if (!Number.isInteger(frame) || frame < 0 || frame >= total) throw new InvalidArgumentError('frames', `frame ${frame} is outside 0…${total - 1}`);
}
