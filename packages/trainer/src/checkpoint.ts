/**
 * Trainer checkpoints: one folder per saved step holding the trainable weights, the AdamW moments and the loop
 * state (step, data position, noise generator, loss history). A folder is written under a temporary name and
 * renamed into place, so a crash mid-save leaves the previous checkpoint intact and never a half-written one.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { BvllmError, CheckpointFormatError, readSafetensors, tf, writeSafetensors, type ParameterStore } from '@bvllm/core';
import type { AdamWState } from './adamw.js';
import { parseTrainerState, type TrainerState } from './trainer-state.js';

export { CHECKPOINT_FORMAT, CHECKPOINT_VERSION, type TrainerState } from './trainer-state.js';

const WEIGHTS = 'trainable.safetensors';
const OPTIMIZER = 'optimizer.safetensors';
const STATE = 'trainer-state.json';

export interface Checkpoint {
  weights: Map<string, tf.Tensor>;
  optimizer: AdamWState;
  state: TrainerState;
}

/** `step-00000042`: zero-padded so folder names sort by step. */
export function checkpointName(step: number): string {
  return `step-${String(step).padStart(8, '0')}`;
}

/** Flushes a file or folder to disk: a rename is only as durable as what it renames (and the folder holding it). */
function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes `checkpoint` to `outDir/step-N` atomically; returns its path. Tensors stay owned by the caller. Every file
 * and the temporary folder are fsynced before the rename, and `outDir` after it, so a power cut leaves either the
 * whole new checkpoint or the previous state, never a renamed folder of empty files.
 */
export function saveCheckpoint(outDir: string, checkpoint: Checkpoint): string {
  mkdirSync(outDir, { recursive: true });
  const final = join(outDir, checkpointName(checkpoint.state.step));
  const tmp = join(outDir, `.${checkpointName(checkpoint.state.step)}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  writeSafetensors(join(tmp, WEIGHTS), checkpoint.weights, { metadata: { format: 'pt' } });
  const moments = new Map<string, tf.Tensor>();
  for (const [k, t] of checkpoint.optimizer.expAvg) moments.set(`exp_avg/${k}`, t);
  for (const [k, t] of checkpoint.optimizer.expAvgSq) moments.set(`exp_avg_sq/${k}`, t);
  writeSafetensors(join(tmp, OPTIMIZER), moments, { metadata: { step: String(checkpoint.optimizer.step) } });
  const fd = openSync(join(tmp, STATE), 'w');
  try {
    writeSync(fd, JSON.stringify(checkpoint.state, null, 1));
  } finally {
    closeSync(fd);
  }
  for (const file of [WEIGHTS, OPTIMIZER, STATE]) fsyncPath(join(tmp, file));
  fsyncPath(tmp);
  if (existsSync(final)) {
    // A rename cannot replace a non-empty folder; move the old one aside first so `final` is never missing long
    // (`cleanStaleCheckpoints` puts it back if the process dies in between).
    const old = `${tmp}-old`;
    renameSync(final, old);
    renameSync(tmp, final);
    rmSync(old, { recursive: true, force: true });
  } else renameSync(tmp, final);
  fsyncPath(outDir);
  return final;
}

/** `.step-00000004.tmp-123` (a save in progress) and `.step-00000004.tmp-123-old` (the checkpoint it replaces). */
const TEMP_NAME = /^\.(step-\d{8})\.tmp-(\d+)(-old)?$/;

function isAlive(pid: number): boolean {
  if (pid === process.pid) return false; // this process has not saved yet when it cleans up
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes what interrupted saves left under `outDir`: temporary folders of processes that no longer run. A moved-aside
 * previous checkpoint (`-old`) whose replacement never got renamed into place is restored first, since it is the
 * only complete copy of that step. Returns the names removed and restored, for the log.
 */
export function cleanStaleCheckpoints(outDir: string): { removed: string[]; restored: string[] } {
  const removed: string[] = [];
  const restored: string[] = [];
  if (!existsSync(outDir)) return { removed, restored };
  for (const name of readdirSync(outDir).sort()) {
    const match = TEMP_NAME.exec(name);
    if (!match || isAlive(Number(match[2]))) continue;
    const path = join(outDir, name);
    if (match[3] && !existsSync(join(outDir, match[1]!))) {
      renameSync(path, join(outDir, match[1]!));
      restored.push(match[1]!);
      continue;
    }
    rmSync(path, { recursive: true, force: true });
    removed.push(name);
  }
  return { removed, restored };
}

/**
 * Reads a checkpoint folder; the caller owns the returned tensors. `trainer-state.json` is validated field by field
 * and the weight files by their headers; any fault is a CheckpointFormatError (or SafetensorsFormatError) naming it.
 */
export function loadCheckpoint(dir: string): Checkpoint {
  const statePath = join(dir, STATE);
  if (!existsSync(statePath)) throw new CheckpointFormatError(dir, `not a trainer checkpoint: ${STATE} is missing`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(statePath, 'utf8'));
  } catch (cause) {
    throw new CheckpointFormatError(statePath, 'unreadable JSON', { cause });
  }
  const state = parseTrainerState(raw, statePath);
  const weights = readSafetensors(join(dir, WEIGHTS));
  let moments: Map<string, tf.Tensor>;
  try {
    moments = readSafetensors(join(dir, OPTIMIZER));
  } catch (error) {
    tf.dispose([...weights.values()]);
    throw error;
  }
  const expAvg = new Map<string, tf.Tensor>();
  const expAvgSq = new Map<string, tf.Tensor>();
  for (const [k, t] of moments) {
    if (k.startsWith('exp_avg_sq/')) expAvgSq.set(k.slice('exp_avg_sq/'.length), t);
    else if (k.startsWith('exp_avg/')) expAvg.set(k.slice('exp_avg/'.length), t);
    else {
      tf.dispose([...weights.values(), ...moments.values()]);
      throw new CheckpointFormatError(join(dir, OPTIMIZER), `unexpected tensor ${k}`);
    }
  }
  return { weights, optimizer: { step: state.step, expAvg, expAvgSq }, state };
}

/** Step folders under `outDir` that hold a state file, newest first. */
export function checkpointsNewestFirst(outDir: string): string[] {
  if (!existsSync(outDir)) return [];
  return readdirSync(outDir)
    .filter((n) => /^step-\d{8}$/.test(n) && existsSync(join(outDir, n, STATE)))
    .sort()
    .reverse()
    .map((n) => join(outDir, n));
}

/** The highest-step checkpoint folder under `outDir`, or undefined when there is none. */
export function latestCheckpoint(outDir: string): string | undefined {
  return checkpointsNewestFirst(outDir)[0];
}

/** A checkpoint `--resume latest` found, and the newer ones it passed over as unreadable. */
export interface LatestValid {
  dir: string;
  checkpoint: Checkpoint;
  /** Newer checkpoints that could not be read, newest first, with the reason. */
  passedOver: { dir: string; reason: string }[];
}

/**
 * The newest checkpoint under `outDir` that reads cleanly: a corrupt or truncated newest one (a crash mid-write on a
 * file system without atomic renames, a disk error) falls back to the one before, and the caller says so. Undefined
 * when `outDir` has no checkpoint; a CheckpointFormatError listing every reason when none reads.
 */
export function latestValidCheckpoint(outDir: string): LatestValid | undefined {
  const candidates = checkpointsNewestFirst(outDir);
  const passedOver: { dir: string; reason: string }[] = [];
  for (const dir of candidates) {
    try {
      return { dir, checkpoint: loadCheckpoint(dir), passedOver };
    } catch (error) {
      // Only a damaged checkpoint is passed over; anything else (out of memory, a bug) stops the run.
      if (!(BvllmError.isInstance(error) && (error.code === 'CHECKPOINT_FORMAT' || error.code === 'SAFETENSORS_FORMAT'))) throw error;
      passedOver.push({ dir, reason: error.message });
    }
  }
  if (passedOver.length) throw new CheckpointFormatError(outDir, `no readable checkpoint to resume from: ${passedOver.map((p) => p.reason).join('; ')}`);
  return undefined;
}

/**
 * Copies a checkpoint's trained weights into `store`: the keys passing `keep` are loaded, every other key keeps its
 * value. Stage 2 starts this way from stage 1 (all `vlm_att_*` weights, spec §10 D8, or only the queries and norms
 * to reproduce the official reset, §2), and evaluation loads a finished run. A checkpoint key the store lacks or a
 * mis-shaped one throws WeightsError. Returns the keys loaded.
 */
export function loadTrainedWeights(store: ParameterStore, dir: string, keep: (key: string) => boolean = () => true): string[] {
  const all = readSafetensors(join(dir, WEIGHTS));
  const kept = new Map([...all].filter(([k]) => keep(k)));
  try {
    store.load(kept, { allowMissing: (k) => !kept.has(k) });
  } finally {
    tf.dispose([...all.values()]);
  }
  return [...kept.keys()].sort();
}
