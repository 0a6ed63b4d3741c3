/**
 * Trainer checkpoints: one folder per saved step holding the trainable weights, the AdamW moments and the loop
 * state (step, data position, noise generator, loss history). A folder is written under a temporary name and
 * renamed into place, so a crash mid-save leaves the previous checkpoint intact and never a half-written one.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CheckpointFormatError, readSafetensors, tf, writeSafetensors, type ParameterStore, type RngState } from '@bvllm/core';
import type { AdamWState } from './adamw.js';

export const CHECKPOINT_FORMAT = 'bvllm-trainer-checkpoint';
export const CHECKPOINT_VERSION = 1;

const WEIGHTS = 'trainable.safetensors';
const OPTIMIZER = 'optimizer.safetensors';
const STATE = 'trainer-state.json';

/** The loop's position and bookkeeping, enough to continue bit-for-bit where it stopped. */
export interface TrainerState {
  format: typeof CHECKPOINT_FORMAT;
  version: typeof CHECKPOINT_VERSION;
  stage: string;
  /** Optimizer updates done; the schedule's next step. */
  step: number;
  totalSteps: number;
  /** Micro-batches consumed from the shuffled stream (the data position). */
  cursor: number;
  /** The training-noise generator passed to `loss` as `context.rng`. */
  rng: RngState;
  /** Mean loss of each update so far, for the curve. */
  lossHistory: number[];
  /** Samples skipped so far. */
  skipped: number;
  /** What must match for a resume to be the same run. */
  run: { seed: number; microBatchSize: number; gradientAccumulationSteps: number; datasetLength: number };
}

export interface Checkpoint {
  weights: Map<string, tf.Tensor>;
  optimizer: AdamWState;
  state: TrainerState;
}

/** `step-00000042`: zero-padded so folder names sort by step. */
export function checkpointName(step: number): string {
  return `step-${String(step).padStart(8, '0')}`;
}

/** Writes `checkpoint` to `outDir/step-N` atomically; returns its path. Tensors stay owned by the caller. */
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
  writeFileSync(join(tmp, STATE), JSON.stringify(checkpoint.state, null, 1));
  if (existsSync(final)) {
    // A rename cannot replace a non-empty folder; move the old one aside first so `final` is never missing long.
    const old = `${tmp}-old`;
    renameSync(final, old);
    renameSync(tmp, final);
    rmSync(old, { recursive: true, force: true });
  } else renameSync(tmp, final);
  return final;
}

/** Reads a checkpoint folder; the caller owns the returned tensors. */
export function loadCheckpoint(dir: string): Checkpoint {
  const statePath = join(dir, STATE);
  if (!existsSync(statePath)) throw new CheckpointFormatError(dir, `not a trainer checkpoint: ${STATE} is missing`);
  let state: TrainerState;
  try {
    state = JSON.parse(readFileSync(statePath, 'utf8')) as TrainerState;
  } catch (cause) {
    throw new CheckpointFormatError(statePath, 'unreadable JSON', { cause });
  }
  if (state.format !== CHECKPOINT_FORMAT)
    throw new CheckpointFormatError(statePath, `format is ${JSON.stringify(state.format)}, expected "${CHECKPOINT_FORMAT}"`);
  if (state.version !== CHECKPOINT_VERSION)
    throw new CheckpointFormatError(statePath, `version ${state.version}, this trainer reads version ${CHECKPOINT_VERSION}; resume with the trainer that wrote it`);
  const weights = readSafetensors(join(dir, WEIGHTS));
  const moments = readSafetensors(join(dir, OPTIMIZER));
  const expAvg = new Map<string, tf.Tensor>();
  const expAvgSq = new Map<string, tf.Tensor>();
  for (const [k, t] of moments) {
    if (k.startsWith('exp_avg_sq/')) expAvgSq.set(k.slice('exp_avg_sq/'.length), t);
    else if (k.startsWith('exp_avg/')) expAvg.set(k.slice('exp_avg/'.length), t);
    else throw new CheckpointFormatError(join(dir, OPTIMIZER), `unexpected tensor ${k}`);
  }
  return { weights, optimizer: { step: state.step, expAvg, expAvgSq }, state };
}

/** The highest-step checkpoint folder under `outDir`, or undefined when there is none. */
export function latestCheckpoint(outDir: string): string | undefined {
  if (!existsSync(outDir)) return undefined;
  const names = readdirSync(outDir)
    .filter((n) => /^step-\d{8}$/.test(n) && existsSync(join(outDir, n, STATE)))
    .sort();
  return names.length ? join(outDir, names[names.length - 1]) : undefined;
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
