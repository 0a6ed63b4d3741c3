/**
 * The rolling window of a live stream's frame features (issue #22 item 2): the frames of the last W seconds, with
 * [CLS] `[Cv]` and the selection feature `[Cv]` of each in memory and its patches `[N, Cv]` as float16 in a ring
 * allocated once, so memory is fixed by W, the rate and the tower and never grows with the stream's age. Optionally
 * a coarse long-term memory keeps one frame per `everySec` seconds from before the window (at most `maxFrames`).
 *
 * A question reads a {@link LiveWindow.snapshot}: an {@link EncodedVideo} of the frames as they stand (long-term
 * first, in time order), whose [CLS] and features are copies and whose patches are read from the ring on demand.
 * The ring holds `reserveFrames` frames more than the window, so frames keep arriving during a question without
 * overwriting the ones its selection is about to read; a snapshot read after its frames were overwritten (a
 * question slower than the reserve) is a {@link WindowSnapshotExpiredError}, never wrong patches.
 */
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BvllmError, InvalidArgumentError, f16ToF32, f32ToF16 } from '@bvllm/core';
import { EncodedVideo, type SelectionFeature } from './encoded-video.js';
import { DEFAULT_PATCH_MEMORY_BYTES, type PatchStore } from './patch-store.js';

/** A snapshot's patches were overwritten before the question read them (the question outlasted the ring's reserve). */
export class WindowSnapshotExpiredError extends BvllmError {
  constructor(readonly frame: number) {
    super('STREAM_SNAPSHOT_EXPIRED', `frame ${frame} of the snapshot left the live window's ring before the question read it; raise reserveFrames`);
  }
}

export interface LiveWindowOptions {
  /** W: seconds of stream time kept. */
  windowSec: number;
  /** Frames per second the source delivers (sizes the ring). */
  fps: number;
  /** N, patch tokens per frame. */
  numPatches: number;
  /** Cv. */
  width: number;
  selectionFeature: SelectionFeature;
  /** One frame per `everySec` seconds from before the window, at most `maxFrames` of them. */
  longTerm?: { everySec: number; maxFrames: number };
  /** Ring slots beyond the window, so a snapshot stays readable while frames arrive. Default max(16, 30 s of frames). */
  reserveFrames?: number;
  /** Float16 ring bytes held in memory; a larger ring is a temp file of fixed size. Default 64 MiB. */
  patchMemoryBytes?: number;
}

/** One encoded frame going into the window. */
export interface WindowFrame {
  /** `[Cv]` raw [CLS]. */
  cls: Float32Array;
  /** `[N, Cv]` float32. */
  patches: Float32Array;
  timestampSec: number;
  /** The source's frame sequence number (shown as the frame index). */
  sequence: number;
}

export interface LiveWindowStatus {
  /** Frames in the window. */
  frames: number;
  /** Stream time of the window's first and last frame (undefined when empty). */
  fromSec?: number;
  toSec?: number;
  longTermFrames: number;
  /** Bytes the window holds, all fixed at construction: features, timestamps and the float16 patch ring. */
  bytes: number;
  /** Where the patch ring is. */
  location: 'memory' | 'file';
  /** The temp file of a `file` ring (deleted when the window and its last snapshot are closed). */
  file?: string;
}

/** Where a ring's float16 patches live: a fixed array, or a fixed-size temp file. */
interface Backing {
  write(slot: number, values: Uint16Array): void;
  read(slot: number, out: Uint16Array): void;
  close(): void;
  readonly location: 'memory' | 'file';
  readonly file?: string;
}

function memoryBacking(slots: number, per: number): Backing {
  const data = new Uint16Array(slots * per);
  return {
    location: 'memory',
    write: (slot, values) => data.set(values, slot * per),
    read: (slot, out) => out.set(data.subarray(slot * per, (slot + 1) * per)),
    close: () => undefined,
  };
}

function fileBacking(per: number): Backing {
  const dir = mkdtempSync(join(tmpdir(), 'bvllm-live-'));
  const file = join(dir, 'ring.f16');
  const fd = openSync(file, 'w+');
  const bytes = per * 2;
  let open = true;
  return {
    location: 'file',
    file,
    write: (slot, values) => void writeSync(fd, values, 0, bytes, slot * bytes),
    read: (slot, out) => void readSync(fd, out, 0, bytes, slot * bytes),
    close: () => {
      if (!open) return;
      open = false;
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * `capacity` frame slots written in turn (insert i goes to slot i mod capacity). Each slot remembers which insert
 * it holds, so a read of an overwritten insert is detected.
 */
class FrameRing {
  readonly cls: Float32Array;
  readonly feature: Float32Array;
  private readonly holds: Float64Array;
  private readonly patches: Backing;
  private readonly per: number;
  private readonly half: Uint16Array;
  inserted = 0;

  constructor(
    readonly capacity: number,
    n: number,
    private readonly c: number,
    separateFeature: boolean,
    memoryBytes: number,
  ) {
    this.per = n * c;
    this.cls = new Float32Array(capacity * c);
    this.feature = separateFeature ? new Float32Array(capacity * c) : this.cls;
    this.holds = new Float64Array(capacity).fill(-1);
    this.patches = capacity * this.per * 2 <= memoryBytes ? memoryBacking(capacity, this.per) : fileBacking(this.per);
    this.half = new Uint16Array(this.per);
  }

  get location(): 'memory' | 'file' {
    return this.patches.location;
  }

  get file(): string | undefined {
    return this.patches.file;
  }

  get bytes(): number {
    return this.cls.byteLength + (this.feature === this.cls ? 0 : this.feature.byteLength) + this.holds.byteLength + this.capacity * this.per * 2;
  }

  /** Writes one frame (`patches` as float16 already), returns its insert index. */
  push(cls: Float32Array, feature: Float32Array, patches: Uint16Array): number {
    const index = this.inserted++;
    const slot = index % this.capacity;
    this.cls.set(cls, slot * this.c);
    if (this.feature !== this.cls) this.feature.set(feature, slot * this.c);
    this.patches.write(slot, patches);
    this.holds[slot] = index;
    return index;
  }

  has(index: number): boolean {
    return this.holds[index % this.capacity] === index;
  }

  row(values: Float32Array, index: number): Float32Array {
    const slot = index % this.capacity;
    return values.subarray(slot * this.c, (slot + 1) * this.c);
  }

  /** The float16 patches of insert `index` (a view reused by the next call). */
  readHalf(index: number): Uint16Array {
    if (!this.has(index)) throw new WindowSnapshotExpiredError(index);
    this.patches.read(index % this.capacity, this.half);
    return this.half;
  }

  close(): void {
    this.patches.close();
  }
}

/** A frame in the window or the long-term memory: where it is and what it is. */
interface Entry {
  ring: FrameRing;
  index: number;
  timestampSec: number;
  sequence: number;
}

/**
 * A snapshot's patches, read from the rings on demand; appending is refused. Closing releases the snapshot's hold
 * on the rings (once), so a window closed meanwhile frees them when its last snapshot is done.
 */
class SnapshotPatches implements PatchStore {
  readonly location = 'memory';
  constructor(
    private readonly entries: readonly Entry[],
    readonly numPatches: number,
    readonly width: number,
    private release: (() => void) | undefined,
  ) {}

  get numFrames(): number {
    return this.entries.length;
  }

  append(): void {
    throw new InvalidArgumentError('patches', 'a live window snapshot is read-only');
  }

  read(frames: readonly number[]): Float32Array {
    const per = this.numPatches * this.width;
    const out = new Float32Array(frames.length * per);
    frames.forEach((frame, i) => {
      const entry = this.entries[frame];
      if (entry === undefined) throw new InvalidArgumentError('frames', `frame ${frame} is outside 0…${this.entries.length - 1}`);
      const half = entry.ring.readHalf(entry.index);
      for (let j = 0; j < per; j++) out[i * per + j] = f16ToF32(half[j]);
    });
    return out;
  }

  close(): void {
    this.release?.();
    this.release = undefined;
  }
}

/** Mean or max over a frame's N patches: `[N, Cv]` → `[Cv]` (as `encodeVideo` pools them, D10). */
function pool(patches: Float32Array, n: number, c: number, mode: 'mean' | 'max'): Float32Array {
  const out = new Float32Array(c).fill(mode === 'max' ? -Infinity : 0);
  for (let p = 0; p < n; p++)
    for (let j = 0; j < c; j++) {
      const v = patches[p * c + j];
      out[j] = mode === 'max' ? Math.max(out[j], v) : out[j] + v;
    }
  if (mode === 'mean') for (let j = 0; j < c; j++) out[j] /= n;
  return out;
}

export class LiveWindow {
  private readonly ring: FrameRing;
  private readonly longRing?: FrameRing;
  private readonly window: Entry[] = [];
  private readonly longTerm: Entry[] = [];
  private readonly windowLimit: number;
  /** Float16 scratch for one frame's patches (the ring copies it). */
  private readonly half: Uint16Array;
  private closed = false;
  /** Snapshots not yet closed: the rings outlive a `close()` until these are done (a question in flight). */
  private openSnapshots = 0;

  constructor(readonly options: LiveWindowOptions) {
    const { windowSec, fps, numPatches: n, width: c } = options;
    if (!(windowSec > 0)) throw new InvalidArgumentError('windowSec', `must be positive, got ${windowSec}`);
    if (!(fps > 0)) throw new InvalidArgumentError('fps', `must be positive, got ${fps}`);
    // Frames are at least 0.98 / fps apart (the source's sampling tolerance), so this many fit in W seconds.
    this.windowLimit = Math.ceil((windowSec * fps) / 0.98) + 1;
    const reserve = options.reserveFrames ?? Math.max(16, Math.ceil(30 * fps));
    const memory = options.patchMemoryBytes ?? DEFAULT_PATCH_MEMORY_BYTES;
    const separate = options.selectionFeature !== 'cls';
    this.half = new Uint16Array(n * c);
    this.ring = new FrameRing(this.windowLimit + reserve, n, c, separate, memory);
    const lt = options.longTerm;
    if (lt) {
      if (!(lt.everySec > 0) || !(lt.maxFrames >= 1)) throw new InvalidArgumentError('longTerm', 'everySec must be positive and maxFrames at least 1');
      this.longRing = new FrameRing(lt.maxFrames + reserve, n, c, separate, memory);
    }
  }

  /** Adds one encoded frame; frames at or before `timestampSec − W` leave the window (to long-term memory if due). */
  push(frame: WindowFrame): void {
    if (this.closed) throw new InvalidArgumentError('window', 'the live window is closed');
    const { numPatches: n, width: c, windowSec } = this.options;
    if (frame.cls.length !== c || frame.patches.length !== n * c) throw new InvalidArgumentError('frame', `expected cls [${c}] and patches [${n}, ${c}]`);
    const last = this.window.at(-1);
    if (last && frame.timestampSec <= last.timestampSec) throw new InvalidArgumentError('frame', `timestamp ${frame.timestampSec} is not after the last one (${last.timestampSec})`);
    // Evicted before the write: the slot the write takes is never one still in the window.
    while (this.window.length && (this.window[0].timestampSec <= frame.timestampSec - windowSec || this.window.length >= this.windowLimit)) this.retire(this.window.shift()!);
    const feature = this.options.selectionFeature === 'cls' ? frame.cls : pool(frame.patches, n, c, this.options.selectionFeature);
    const half = this.half;
    for (let i = 0; i < half.length; i++) half[i] = f32ToF16(frame.patches[i]);
    const index = this.ring.push(frame.cls, feature, half);
    this.window.push({ ring: this.ring, index, timestampSec: frame.timestampSec, sequence: frame.sequence });
  }

  /** A frame leaving the window: kept in long-term memory when `everySec` has passed since the last one kept. */
  private retire(entry: Entry): void {
    const ring = this.longRing;
    const lt = this.options.longTerm;
    if (!ring || !lt) return;
    const lastKept = this.longTerm.at(-1);
    if (lastKept && entry.timestampSec - lastKept.timestampSec < lt.everySec) return;
    const index = ring.push(this.ring.row(this.ring.cls, entry.index), this.ring.row(this.ring.feature, entry.index), this.ring.readHalf(entry.index));
    this.longTerm.push({ ring, index, timestampSec: entry.timestampSec, sequence: entry.sequence });
    if (this.longTerm.length > lt.maxFrames) this.longTerm.shift();
  }

  get numFrames(): number {
    return this.window.length;
  }

  status(): LiveWindowStatus {
    return {
      frames: this.window.length,
      fromSec: this.window[0]?.timestampSec,
      toSec: this.window.at(-1)?.timestampSec,
      longTermFrames: this.longTerm.length,
      bytes: this.ring.bytes + (this.longRing?.bytes ?? 0),
      location: this.ring.location,
      ...(this.ring.file && { file: this.ring.file }),
    };
  }

  /**
   * The long-term frames then the window's, as an EncodedVideo for one question: `[T, Cv]` [CLS] and features
   * copied, patches read from the ring (T ≤ window frames + long-term frames, whatever the stream's age).
   */
  snapshot(): EncodedVideo {
    if (this.closed) throw new InvalidArgumentError('window', 'the live window is closed');
    const entries = [...this.longTerm, ...this.window];
    if (entries.length === 0) throw new InvalidArgumentError('window', 'the live window holds no frame yet');
    const c = this.options.width;
    const cls = new Float32Array(entries.length * c);
    const separate = this.options.selectionFeature !== 'cls';
    const feature = separate ? new Float32Array(entries.length * c) : cls;
    entries.forEach((e, i) => {
      cls.set(e.ring.row(e.ring.cls, e.index), i * c);
      if (separate) feature.set(e.ring.row(e.ring.feature, e.index), i * c);
    });
    this.openSnapshots++;
    const release = () => {
      this.openSnapshots--;
      if (this.closed && this.openSnapshots === 0) this.freeRings();
    };
    return new EncodedVideo(
      cls,
      feature,
      new SnapshotPatches(entries, this.options.numPatches, c, release),
      entries.map((e) => e.timestampSec),
      entries.map((e) => e.sequence),
      false,
    );
  }

  /**
   * Takes no more frames or snapshots and frees the rings (a file ring's temp file is deleted), at once or, while
   * snapshots are open, when the last one closes: a question in flight when its stream closes still reads its
   * frames. Idempotent.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.window.length = 0;
    this.longTerm.length = 0;
    if (this.openSnapshots === 0) this.freeRings();
  }

  private freeRings(): void {
    this.ring.close();
    this.longRing?.close();
  }
}
