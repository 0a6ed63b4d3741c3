/**
 * The loop of the recipe's own pre-training phases (vision tower, spatial Q-Former, token alignment): one update per
 * step, a progress bar with ETA, and checkpoints that a resumed run continues from bit for bit. A checkpoint holds
 * the phase's parameters, the AdamW moments, the phase's random generator and the batch source's position, which
 * is everything a step reads.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AbortedError, CheckpointFormatError, Rng, readSafetensors, tf, writeSafetensors, type RngState } from '@bvllm/core';
import { ProgressReporter, type AdamW, type ProgressSink } from '@bvllm/trainer';
import type { PretrainBatchSource } from './pretrain-batches.js';

/** How a phase is run: where it checkpoints, whether it resumes, where its bar goes. */
export interface PhaseRun {
  /** Checkpoints (`step-N/`, the newest kept) go here; without it the phase keeps none and cannot resume. */
  dir?: string;
  /** Steps between checkpoints (default: only after the last step). */
  checkpointEvery?: number;
  /** Continue from the newest checkpoint in `dir`, if there is one. */
  resume?: boolean;
  /** Ends the phase once this many steps are done, with a checkpoint there, as an interrupted run would (AbortedError). */
  stopAtStep?: number;
  /** Checked between steps; on abort a checkpoint is saved, then AbortedError is thrown. */
  signal?: AbortSignal;
  /** The progress bar's sink (default: none). */
  progress?: ProgressSink;
  /** Names the phase on its bar. */
  label?: string;
}

export interface StepLoop {
  steps: number;
  batchSize: number;
  /** What the phase trains: saved and restored by key. */
  params: ReadonlyMap<string, tf.Variable>;
  optimizer: AdamW;
  batches: PretrainBatchSource;
  /** The phase's generator as the step starts; a resumed run hands the checkpoint's to the steps instead. */
  rng: Rng;
  /** The learning rate of step `step`, for the bar. */
  lrAt: (step: number) => number;
}

interface StepState {
  step: number;
  steps: number;
  optimizerStep: number;
  rng: RngState;
  position: number[];
  losses: number[];
}

const WEIGHTS = 'weights.safetensors';
const STATE = 'state.json';
const stepName = (step: number) => `step-${String(step).padStart(8, '0')}`;

function newestCheckpoint(dir: string): string | undefined {
  if (!existsSync(dir)) return undefined;
  const names = readdirSync(dir).filter((n) => /^step-\d{8}$/.test(n) && existsSync(join(dir, n, STATE))).sort();
  return names.length ? join(dir, names.at(-1)!) : undefined;
}

/** Writes `step-N` under a temporary name and renames it into place, then drops the older ones. */
function save(dir: string, loop: StepLoop, rng: Rng, losses: number[]): void {
  mkdirSync(dir, { recursive: true });
  const step = losses.length;
  const tmp = join(dir, `.${stepName(step)}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  const moments = loop.optimizer.state();
  const tensors = new Map<string, tf.Tensor>([...loop.params].map(([k, v]) => [`param/${k}`, v] as [string, tf.Tensor]));
  for (const [k, t] of moments.expAvg) tensors.set(`exp_avg/${k}`, t);
  for (const [k, t] of moments.expAvgSq) tensors.set(`exp_avg_sq/${k}`, t);
  try {
    writeSafetensors(join(tmp, WEIGHTS), tensors);
  } finally {
    tf.dispose([...moments.expAvg.values(), ...moments.expAvgSq.values()]);
  }
  const state: StepState = { step, steps: loop.steps, optimizerStep: moments.step, rng: rng.state(), position: loop.batches.position(), losses };
  writeFileSync(join(tmp, STATE), JSON.stringify(state));
  rmSync(join(dir, stepName(step)), { recursive: true, force: true });
  renameSync(tmp, join(dir, stepName(step)));
  for (const name of readdirSync(dir)) if (/^step-\d{8}$/.test(name) && name !== stepName(step)) rmSync(join(dir, name), { recursive: true, force: true });
}

/** `state.json`, checked field by field: a checkpoint is a file users copy and truncate. */
function readState(path: string): StepState {
  const file = join(path, STATE);
  let state: StepState;
  try {
    state = JSON.parse(readFileSync(file, 'utf8')) as StepState;
  } catch (cause) {
    throw new CheckpointFormatError(file, 'unreadable JSON', { cause });
  }
  const count = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
  const valid =
    count(state?.step) &&
    count(state.steps) &&
    count(state.optimizerStep) &&
    Array.isArray(state.losses) &&
    state.losses.length === state.step &&
    state.step <= state.steps &&
    Array.isArray(state.position) &&
    state.position.every(count) &&
    [state.rng?.seed, state.rng?.stream, state.rng?.counter].every(count);
  if (!valid) throw new CheckpointFormatError(file, 'not a pre-training phase checkpoint (step, steps, optimizerStep, rng, position, losses)');
  return state;
}

/** Loads a checkpoint into the loop's parameters and optimizer; returns the generator and losses it saved. */
function restore(path: string, loop: StepLoop): { rng: Rng; losses: number[] } {
  const state = readState(path);
  if (state.steps !== loop.steps) throw new CheckpointFormatError(path, `a phase of ${state.steps} steps, resumed as one of ${loop.steps}; a resume must be the same run`);
  const tensors = readSafetensors(join(path, WEIGHTS));
  try {
    const part = (prefix: string) => new Map([...tensors].filter(([k]) => k.startsWith(prefix)).map(([k, t]) => [k.slice(prefix.length), t]));
    const params = part('param/');
    for (const [key, variable] of loop.params) {
      const saved = params.get(key);
      if (!saved) throw new CheckpointFormatError(path, `no weights for ${key}`);
      variable.assign(saved);
    }
    loop.optimizer.loadState({ step: state.optimizerStep, expAvg: part('exp_avg/'), expAvgSq: part('exp_avg_sq/') });
  } finally {
    tf.dispose([...tensors.values()]);
  }
  loop.batches.seek(state.position);
  return { rng: Rng.fromState(state.rng), losses: state.losses };
}

/**
 * Runs `update(step, rng)` (one AdamW update; returns its loss) for steps `0 … loop.steps - 1`, from the newest
 * checkpoint when resuming. Returns the loss of every step, those before a resume included.
 */
export async function runSteps(loop: StepLoop, run: PhaseRun, update: (step: number, rng: Rng) => number): Promise<number[]> {
  let rng = loop.rng;
  let losses: number[] = [];
  const found = run.resume && run.dir ? newestCheckpoint(run.dir) : undefined;
  if (found) ({ rng, losses } = restore(found, loop));
  const reporter = run.progress ? new ProgressReporter(run.progress, Math.max(1, Math.floor(loop.steps / 50)), run.label) : undefined;
  const startStep = losses.length;
  const start = performance.now();
  const every = run.checkpointEvery ?? loop.steps;
  const checkpoint = () => run.dir && save(run.dir, loop, rng, losses);
  while (losses.length < loop.steps) {
    const step = losses.length;
    // A turn of the event loop between steps, so a signal handler (Ctrl-C) can abort the run between two of them.
    if (run.signal) await new Promise((resolve) => setImmediate(resolve));
    if (run.signal?.aborted || step === run.stopAtStep) {
      checkpoint();
      throw new AbortedError(`${run.label ?? 'pre-training'} at step ${step}`, { cause: run.signal?.reason });
    }
    const stepStart = performance.now();
    losses.push(update(step, rng));
    const seconds = (performance.now() - stepStart) / 1000;
    reporter?.update({
      step: step + 1,
      totalSteps: loop.steps,
      loss: losses[step],
      lr: loop.lrAt(step),
      samplesPerSec: loop.batchSize / Math.max(seconds, 1e-9),
      elapsedSec: (performance.now() - start) / 1000,
      startStep,
    });
    if ((step + 1) % every === 0 || step + 1 === loop.steps) checkpoint();
  }
  return losses;
}
